//! Whole answers between Converse and Anthropic Messages, both ways
//! (`protocols.md` §4.4). Usage has the same meaning on both sides:
//! `inputTokens` excludes cache reads and writes, like Anthropic's
//! `input_tokens`.
//!
//! | Converse | Messages |
//! |---|---|
//! | `{text}` | `text` |
//! | `{toolUse:{toolUseId, name, input}}` | `tool_use` (name restored) |
//! | `{reasoningContent:{reasoningText:{text, signature}}}` | `thinking` |
//! | `{reasoningContent:{redactedContent}}` | `redacted_thinking` |
//! | `stopReason` `end_turn`, `tool_use`, `max_tokens`, `stop_sequence`, `model_context_window_exceeded` | the same |
//! | `stopReason` `guardrail_intervened`, `content_filtered` | `refusal` |
//! | `usage.{inputTokens, outputTokens, cacheReadInputTokens, cacheWriteInputTokens}` | `usage.{input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens}` |

use serde_json::{Value, json};

use crate::translate::TranslateError;
use crate::translate::names::ToolNames;
use crate::wire::usage::Usage;

/// Converse `stopReason` → Anthropic `stop_reason`.
pub fn stop_reason_to_anthropic(reason: &str) -> &str {
    match reason {
        "guardrail_intervened" | "content_filtered" => "refusal",
        "end_turn"
        | "tool_use"
        | "max_tokens"
        | "stop_sequence"
        | "model_context_window_exceeded" => reason,
        _ => "end_turn",
    }
}

/// Anthropic `stop_reason` → Converse `stopReason`.
pub fn stop_reason_to_converse(reason: &str) -> &str {
    match reason {
        "refusal" => "content_filtered",
        "tool_use" | "max_tokens" | "stop_sequence" | "model_context_window_exceeded" => reason,
        // end_turn, pause_turn and anything new
        _ => "end_turn",
    }
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Usage of a Converse `usage` object.
pub fn usage_from_converse(u: &Value) -> Usage {
    Usage {
        input_tokens: count(u, "inputTokens"),
        output_tokens: count(u, "outputTokens"),
        cache_read_tokens: count(u, "cacheReadInputTokens"),
        cache_write_tokens: count(u, "cacheWriteInputTokens"),
        reasoning_tokens: 0,
    }
}

/// A Converse `usage` object.
pub fn converse_usage(u: &Usage) -> Value {
    let total = u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens;
    let mut v = json!({
        "inputTokens": u.input_tokens,
        "outputTokens": u.output_tokens,
        "totalTokens": total,
    });
    if u.cache_read_tokens > 0 || u.cache_write_tokens > 0 {
        v["cacheReadInputTokens"] = json!(u.cache_read_tokens);
        v["cacheWriteInputTokens"] = json!(u.cache_write_tokens);
    }
    v
}

/// An Anthropic `usage` object from [`Usage`].
pub fn anthropic_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    })
}

/// A Converse answer as an Anthropic message with `id` and `model`; tool
/// names changed for Converse are restored with `names`.
pub fn response_to_messages(
    body: &Value,
    names: &ToolNames,
    id: &str,
    model: &str,
) -> Result<Value, TranslateError> {
    let blocks = body
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            TranslateError::Upstream("Converse answer without output.message.content".into())
        })?;
    let mut content = Vec::new();
    for b in blocks {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            content.push(json!({"type": "text", "text": t}));
        } else if let Some(t) = b.get("toolUse") {
            let name = t["name"].as_str().unwrap_or_default();
            let input = match t.get("input") {
                Some(v) if v.is_object() => v.clone(),
                _ => json!({}),
            };
            content.push(json!({"type": "tool_use", "id": t["toolUseId"], "name": names.to_client(name), "input": input}));
        } else if let Some(r) = b.get("reasoningContent") {
            if let Some(text) = r.get("reasoningText") {
                content.push(json!({
                    "type": "thinking",
                    "thinking": text["text"].as_str().unwrap_or_default(),
                    "signature": text["signature"].as_str().unwrap_or_default()
                }));
            } else if let Some(data) = r.get("redactedContent") {
                content.push(json!({"type": "redacted_thinking", "data": data}));
            }
        }
        // Other block kinds (citations, images the model returns) are dropped.
    }
    let stop = body
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let usage = usage_from_converse(body.get("usage").unwrap_or(&Value::Null));
    Ok(json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_to_anthropic(stop),
        "stop_sequence": null,
        "usage": anthropic_usage(&usage),
    }))
}

/// Front door: an Anthropic message as a Converse answer.
pub fn response_from_messages(body: &Value) -> Result<Value, TranslateError> {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Upstream("Anthropic message without content".into()))?;
    let mut content = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => content.push(json!({"text": b["text"]})),
            Some("tool_use") => content.push(json!({"toolUse": {"toolUseId": b["id"], "name": b["name"], "input": b.get("input").cloned().unwrap_or_else(|| json!({}))}})),
            Some("thinking") => {
                let mut text = json!({"text": b["thinking"]});
                if let Some(s) = b.get("signature").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                    text["signature"] = json!(s);
                }
                content.push(json!({"reasoningContent": {"reasoningText": text}}));
            }
            Some("redacted_thinking") => content.push(json!({"reasoningContent": {"redactedContent": b["data"]}})),
            _ => {}
        }
    }
    let stop = body
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let usage = Usage::from_anthropic(body.get("usage").unwrap_or(&Value::Null));
    Ok(json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason_to_converse(stop),
        "usage": converse_usage(&usage),
        "metrics": {"latencyMs": 0},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_both_ways() {
        for (c, a) in [
            ("end_turn", "end_turn"),
            ("tool_use", "tool_use"),
            ("max_tokens", "max_tokens"),
            ("stop_sequence", "stop_sequence"),
            (
                "model_context_window_exceeded",
                "model_context_window_exceeded",
            ),
            ("guardrail_intervened", "refusal"),
            ("content_filtered", "refusal"),
            ("new_reason", "end_turn"),
        ] {
            assert_eq!(stop_reason_to_anthropic(c), a, "{c}");
        }
        assert_eq!(stop_reason_to_converse("refusal"), "content_filtered");
        assert_eq!(stop_reason_to_converse("pause_turn"), "end_turn");
        assert_eq!(stop_reason_to_converse("tool_use"), "tool_use");
    }

    #[test]
    fn usage_round_trips() {
        let u = Usage {
            input_tokens: 10,
            output_tokens: 20,
            cache_read_tokens: 300,
            cache_write_tokens: 40,
            reasoning_tokens: 0,
        };
        let c = converse_usage(&u);
        assert_eq!(c["totalTokens"], 370);
        assert_eq!(usage_from_converse(&c), u);
        assert_eq!(Usage::from_anthropic(&anthropic_usage(&u)), u);
    }
}
