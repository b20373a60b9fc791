//! Claude on Vertex AI (`protocols.md` §5.6): the Anthropic Messages body
//! shaped for `rawPredict` / `streamRawPredict` and `count-tokens:rawPredict`.
//! Pure: JSON in, JSON out.
//!
//! - [`request_from_messages`]: the Messages request without `model` (the
//!   path names it), with `"anthropic_version": "vertex-2023-10-16"`,
//!   `"stream": true` kept for `streamRawPredict`, and the fields Vertex
//!   refuses removed ([`betas`] and the Bedrock field policy); the
//!   forwarded betas travel in the `anthropic-beta` header.
//! - [`count_tokens_from_messages`]: the `count_tokens` body for
//!   `count-tokens:rawPredict`, which keeps `model` (in its Vertex spelling).
//!
//! The answers are Anthropic's own (a message, Anthropic SSE, `{"input_tokens"}`),
//! so every client translation of the Anthropic upstream applies unchanged:
//! Chat Completions and Responses clients reach Vertex through
//! `chat_to_messages` / the Responses translation first, exactly as for
//! Bedrock's InvokeModel ([`crate::translate::bedrock`]).

pub mod betas;

use serde_json::{Map, Value, json};

use crate::translate::TranslateError;
use crate::translate::bedrock::betas::strip_fields;

/// `anthropic_version` Vertex requires in a Claude body.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

fn object(body: &Value) -> Result<Map<String, Value>, TranslateError> {
    body.as_object()
        .cloned()
        .ok_or_else(|| TranslateError::invalid("body", "must be a JSON object"))
}

/// The `rawPredict` / `streamRawPredict` body for an Anthropic Messages
/// request. `betas` are the flags forwarded (already filtered by
/// [`betas::select`]); `stream` is the operation's. Returns the body and
/// the names of the fields removed (for logs).
pub fn request_from_messages(
    body: &Value,
    betas: &[String],
    stream: bool,
) -> Result<(Value, Vec<String>), TranslateError> {
    let mut obj = object(body)?;
    // Removes `model`, `stream` and what Vertex refuses.
    let removed = strip_fields(&mut obj, betas);
    obj.remove("anthropic_beta");
    obj.insert("anthropic_version".into(), json!(VERTEX_ANTHROPIC_VERSION));
    if stream {
        obj.insert("stream".into(), json!(true));
    }
    Ok((Value::Object(obj), removed))
}

/// The `count-tokens:rawPredict` body for an Anthropic `count_tokens`
/// request: `model` kept (as `vertex_model`), `anthropic_version` added.
pub fn count_tokens_from_messages(
    body: &Value,
    vertex_model: &str,
    betas: &[String],
) -> Result<Value, TranslateError> {
    let mut obj = object(body)?;
    strip_fields(&mut obj, betas);
    obj.remove("anthropic_beta");
    obj.remove("max_tokens");
    obj.insert("model".into(), json!(vertex_model));
    obj.insert("anthropic_version".into(), json!(VERTEX_ANTHROPIC_VERSION));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_predict_bodies() {
        let body = json!({
            "model": "claude-sonnet-4-20250514", "max_tokens": 64, "stream": true,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"user_id": "u"}, "anthropic_beta": ["x"],
            "context_management": {"edits": []},
            "tools": [{"name": "t", "input_schema": {"type": "object"}, "defer_loading": true}]
        });
        let (out, removed) = request_from_messages(&body, &[], true).unwrap();
        assert_eq!(
            out,
            json!({
                "max_tokens": 64, "stream": true, "anthropic_version": "vertex-2023-10-16",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"name": "t", "input_schema": {"type": "object"}}]
            })
        );
        assert_eq!(
            removed,
            ["metadata", "context_management", "tools[].defer_loading"]
        );
        let betas = vec![
            "context-management-2025-06-27".to_string(),
            "tool-search-tool-2025-10-19".to_string(),
        ];
        let (out, _) = request_from_messages(&body, &betas, false).unwrap();
        assert!(out.get("stream").is_none(), "rawPredict: no stream");
        assert!(out.get("model").is_none());
        assert!(out.get("context_management").is_some());
        assert_eq!(out["tools"][0]["defer_loading"], true);
        assert!(request_from_messages(&json!([]), &[], false).is_err());
    }

    #[test]
    fn count_tokens_keeps_the_model() {
        let body = json!({"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "hi"}], "system": "s"});
        assert_eq!(
            count_tokens_from_messages(&body, "claude-sonnet-4@20250514", &[]).unwrap(),
            json!({"model": "claude-sonnet-4@20250514", "anthropic_version": "vertex-2023-10-16",
                "messages": [{"role": "user", "content": "hi"}], "system": "s"})
        );
    }
}
