//! Response: a whole Gemini `generateContent` answer → an Anthropic message
//! (`protocols.md` §5.3). The client translations of the Anthropic
//! upstream turn it into a Chat Completions or Responses answer.
//!
//! | Gemini | Anthropic |
//! |---|---|
//! | `{text, thought: true}` | `thinking` block (no signature: Gemini's are not Anthropic's) |
//! | `{text}` | `text` block (adjacent parts joined) |
//! | `{functionCall: {id?, name, args}, thoughtSignature?}` | `tool_use` with the id of [`super::ids`] (the signature inside it) |
//! | `inlineData`, `executableCode`, … | dropped |
//! | `finishReason` `STOP` (with a function call) / `STOP` | `tool_use` / `end_turn` |
//! | `MAX_TOKENS` | `max_tokens` |
//! | `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY`, … | `refusal` |
//! | anything else (`MALFORMED_FUNCTION_CALL`, `OTHER`, …) | `end_turn` |
//! | no candidate, `promptFeedback.blockReason` | `refusal`, no content |
//! | `usageMetadata` | `usage` ([`usage_from_gemini`]) |
//!
//! The message id is `msg_<responseId>`.

use serde_json::{Value, json};

use super::ids;
use crate::translate::TranslateError;
use crate::translate::mapping::anthropic_usage;
use crate::translate::names::ToolNames;
use crate::wire::usage::{ANTHROPIC_REASONING_TOKENS, Usage};

/// Finish reasons of the safety family.
pub const SAFETY_REASONS: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
];

/// Anthropic `stop_reason` for a Gemini `finishReason`; `called` says a
/// function call was seen (Gemini reports `STOP` for those).
pub fn stop_reason(finish: Option<&str>, called: bool) -> &'static str {
    match finish {
        Some("MAX_TOKENS") => "max_tokens",
        Some(f) if SAFETY_REASONS.contains(&f) => "refusal",
        _ if called => "tool_use",
        _ => "end_turn",
    }
}

/// Usage from a Gemini `usageMetadata` (`promptTokenCount` includes the
/// cached tokens; `candidatesTokenCount` excludes the thoughts).
pub fn usage_from_gemini(meta: &Value) -> Usage {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount") + n("toolUsePromptTokenCount");
    let cached = n("cachedContentTokenCount").min(prompt);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        input_tokens: prompt - cached,
        output_tokens: n("candidatesTokenCount") + thoughts,
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

/// Puts Gemini's `thoughtsTokenCount` into an Anthropic message's usage as
/// the gateway's [`ANTHROPIC_REASONING_TOKENS`], for the OpenAI-format
/// client translations (`reasoning_tokens`); nothing when it is 0.
pub fn add_reasoning_usage(message: &mut Value, upstream: &Value) {
    let thoughts = upstream
        .pointer("/usageMetadata/thoughtsTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if thoughts > 0
        && let Some(usage) = message.get_mut("usage").and_then(Value::as_object_mut)
    {
        usage.insert(ANTHROPIC_REASONING_TOKENS.into(), json!(thoughts));
    }
}

/// The message id of an answer.
pub fn message_id(upstream: &Value) -> String {
    match upstream.get("responseId").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => format!("msg_{id}"),
        _ => "msg_gemini".to_string(),
    }
}

/// The client's tool-use block for a `functionCall` part (the `index`-th
/// call of the answer).
pub fn tool_use(part: &Value, response_id: &str, index: usize, names: &ToolNames) -> Value {
    let call = &part["functionCall"];
    let name = call["name"].as_str().unwrap_or_default();
    let args = match call.get("args") {
        Some(a) if a.is_object() => a.clone(),
        _ => json!({}),
    };
    let base = match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => crate::translate::names::anthropic_id(id),
        _ => ids::synthesize(response_id, index, name, &args),
    };
    let id = ids::encode(&base, part.get("thoughtSignature").and_then(Value::as_str));
    json!({"type": "tool_use", "id": id, "name": names.to_client(name), "input": args})
}

/// A whole `generateContent` answer as an Anthropic message for `model`.
/// `names` restores shortened tool names.
pub fn response_to_messages(
    upstream: &Value,
    names: &ToolNames,
    model: &str,
) -> Result<Value, TranslateError> {
    if !upstream.is_object() {
        return Err(TranslateError::Upstream(
            "the Gemini answer is not a JSON object".into(),
        ));
    }
    let response_id = upstream
        .get("responseId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let usage = usage_from_gemini(upstream.get("usageMetadata").unwrap_or(&Value::Null));
    let candidate = upstream
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let mut content: Vec<Value> = Vec::new();
    let mut calls = 0;
    let finish = candidate
        .and_then(|c| c.get("finishReason"))
        .and_then(Value::as_str);
    let parts = candidate
        .and_then(|c| c.pointer("/content/parts"))
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        if part.get("functionCall").is_some() {
            content.push(tool_use(part, response_id, calls, names));
            calls += 1;
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
            let (kind, field) = if thought {
                ("thinking", "thinking")
            } else {
                ("text", "text")
            };
            match content.last_mut() {
                Some(last) if last["type"] == kind => {
                    let joined = format!("{}{text}", last[field].as_str().unwrap_or_default());
                    last[field] = json!(joined);
                }
                _ if text.is_empty() => {}
                _ if thought => {
                    content.push(json!({"type": "thinking", "thinking": text, "signature": ""}))
                }
                _ => content.push(json!({"type": "text", "text": text})),
            }
        }
    }
    let stop = match candidate {
        Some(_) => stop_reason(finish, calls > 0),
        None if upstream.pointer("/promptFeedback/blockReason").is_some() => "refusal",
        None => {
            return Err(TranslateError::Upstream(
                "the Gemini answer has no candidate".into(),
            ));
        }
    };
    Ok(json!({
        "id": message_id(upstream),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": anthropic_usage(&usage),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons() {
        assert_eq!(stop_reason(Some("STOP"), false), "end_turn");
        assert_eq!(stop_reason(Some("STOP"), true), "tool_use");
        assert_eq!(stop_reason(Some("MAX_TOKENS"), true), "max_tokens");
        assert_eq!(stop_reason(Some("SAFETY"), false), "refusal");
        assert_eq!(stop_reason(Some("PROHIBITED_CONTENT"), false), "refusal");
        assert_eq!(
            stop_reason(Some("MALFORMED_FUNCTION_CALL"), false),
            "end_turn"
        );
        assert_eq!(stop_reason(None, false), "end_turn");
    }

    #[test]
    fn usage_counts_cached_and_thinking_tokens() {
        let u = usage_from_gemini(&json!({
            "promptTokenCount": 2100, "cachedContentTokenCount": 2000,
            "candidatesTokenCount": 30, "thoughtsTokenCount": 120, "totalTokenCount": 2250
        }));
        assert_eq!(
            u,
            Usage {
                input_tokens: 100,
                output_tokens: 150,
                cache_read_tokens: 2000,
                cache_write_tokens: 0,
                reasoning_tokens: 120
            }
        );
    }
}
