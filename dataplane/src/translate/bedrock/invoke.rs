//! InvokeModel with an Anthropic body (Claude on Bedrock), both ways
//! (`protocols.md` §4.7).
//!
//! Upstream ([`request_from_messages`]): the Anthropic Messages request
//! without `model` and `stream` (the path names the model and the API), with
//! `"anthropic_version": "bedrock-2023-05-31"` and the forwarded betas as
//! the body array `anthropic_beta` ([`super::betas`] filters both flags and
//! fields). The answer of `/invoke` is an Anthropic message as it is; the
//! stream of `/invoke-with-response-stream` is `chunk` events whose payload
//! `{"bytes": "<base64>"}` is one Anthropic stream event, re-emitted as
//! `event: <type>\ndata: <json>` by [`ChunksToSse`] (byte for byte: signed
//! thinking and `amazon-bedrock-invocationMetrics` pass unchanged).
//!
//! Front door ([`request_to_messages`]): a Bedrock InvokeModel body from a
//! client (boto3, `AnthropicBedrock`, Claude Code in Bedrock mode) becomes
//! an Anthropic Messages request for the routed model: `model` from the
//! path, `stream` from the path, `anthropic_version` dropped (the clients
//! send `bedrock-2023-05-31` or their SDK's version; the upstream gets the
//! value it expects), and `anthropic_beta` returned as flags for the
//! `anthropic-beta` header.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use super::betas;
use super::errors::{anthropic_error_event, kind_of};
use crate::translate::TranslateError;
use crate::wire::ErrorKind;
use crate::wire::eventstream::{FrameError, FrameTranslator, Kind, Message};

/// `anthropic_version` Bedrock requires in an InvokeModel body.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// The InvokeModel body for an Anthropic Messages request. `betas` are the
/// flags to forward (already filtered by [`betas::select`]). Returns the
/// body and the names of the fields removed.
pub fn request_from_messages(
    body: &Value,
    betas: &[String],
) -> Result<(Value, Vec<String>), TranslateError> {
    let mut obj: Map<String, Value> = body
        .as_object()
        .ok_or_else(|| TranslateError::invalid("body", "must be a JSON object"))?
        .clone();
    let removed = betas::strip_fields(&mut obj, betas);
    obj.remove("anthropic_beta");
    obj.insert("anthropic_version".into(), json!(BEDROCK_ANTHROPIC_VERSION));
    if !betas.is_empty() {
        obj.insert("anthropic_beta".into(), json!(betas));
    }
    Ok((Value::Object(obj), removed))
}

/// A Bedrock-format InvokeModel request from a client, as an Anthropic
/// Messages request for `model`, and its body betas.
pub fn request_to_messages(
    body: &Value,
    model: &str,
    stream: bool,
) -> Result<(Value, Vec<String>), TranslateError> {
    let mut obj = body
        .as_object()
        .ok_or_else(|| TranslateError::invalid("body", "must be a JSON object"))?
        .clone();
    obj.remove("anthropic_version");
    let betas = match obj.remove("anthropic_beta") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|f| {
                f.as_str().map(str::to_string).ok_or_else(|| {
                    TranslateError::invalid("anthropic_beta", "must be an array of strings")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(TranslateError::invalid(
                "anthropic_beta",
                "must be an array of strings",
            ));
        }
    };
    obj.insert("model".into(), json!(model));
    if stream {
        obj.insert("stream".into(), json!(true));
    } else {
        obj.remove("stream");
    }
    Ok((Value::Object(obj), betas))
}

/// InvokeModel `chunk` events → Anthropic SSE (see the module docs).
/// Exceptions become an Anthropic `error` event, after which nothing more
/// is emitted.
#[derive(Debug, Default)]
pub struct ChunksToSse {
    failed: bool,
}

impl ChunksToSse {
    /// A translator for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        if !self.failed {
            self.failed = true;
            anthropic_error_event(kind, message, out);
        }
    }
}

/// Decodes one `chunk` payload into the Anthropic event's (type, JSON text).
pub fn decode_chunk(payload: &[u8]) -> Result<(String, String), String> {
    let v: Value =
        serde_json::from_slice(payload).map_err(|e| format!("chunk is not JSON: {e}"))?;
    let b64 = v
        .get("bytes")
        .and_then(Value::as_str)
        .ok_or("chunk has no bytes")?;
    let raw = B64
        .decode(b64)
        .map_err(|e| format!("chunk bytes are not base64: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| "chunk bytes are not UTF-8".to_string())?;
    let event: Value =
        serde_json::from_str(&text).map_err(|e| format!("chunk event is not JSON: {e}"))?;
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or("chunk event has no type")?
        .to_string();
    Ok((kind, text))
}

/// Writes one SSE event (`data` must be one line of JSON).
pub fn sse(out: &mut Vec<u8>, event: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

impl FrameTranslator for ChunksToSse {
    fn message(&mut self, msg: &Message, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        match msg.kind() {
            Kind::Event("chunk") => match decode_chunk(&msg.payload) {
                // serde_json::Value::to_string re-serialises on one line; the
                // decoded text is used as is when it already is one line.
                Ok((kind, text)) if !text.contains('\n') => sse(out, &kind, &text),
                Ok((kind, text)) => {
                    let one_line = serde_json::from_str::<Value>(&text)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    sse(out, &kind, &one_line);
                }
                Err(e) => self.fail(
                    ErrorKind::Api,
                    &format!("malformed Bedrock stream: {e}"),
                    out,
                ),
            },
            Kind::Event(_) => {} // unknown event types are ignored
            Kind::Exception(name) => {
                let message = super::errors::message_of(&msg.payload);
                self.fail(kind_of(name), &message, out);
            }
            Kind::Error { code, message } => {
                let text = format!("{code}: {message}");
                self.fail(ErrorKind::Api, &text, out);
            }
            Kind::Unknown => {}
        }
    }

    fn frame_error(&mut self, error: &FrameError, out: &mut Vec<u8>) {
        self.fail(
            ErrorKind::Api,
            &format!("malformed Bedrock stream: {error}"),
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::eventstream::{event_message, exception_message};

    #[test]
    fn the_body_drops_model_and_stream_and_carries_betas() {
        let body = json!({
            "model": "claude", "stream": true, "max_tokens": 10,
            "anthropic_beta": ["stale"],
            "messages": [{"role": "user", "content": "hi"}]
        });
        let (out, removed) =
            request_from_messages(&body, &["context-1m-2025-08-07".into()]).unwrap();
        assert_eq!(
            out,
            json!({
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
                "anthropic_version": "bedrock-2023-05-31",
                "anthropic_beta": ["context-1m-2025-08-07"]
            })
        );
        assert!(removed.is_empty());
        let (out, _) = request_from_messages(&body, &[]).unwrap();
        assert!(out.get("anthropic_beta").is_none());
    }

    #[test]
    fn front_door_bodies_become_messages_requests() {
        let body = json!({
            "anthropic_version": "bedrock-2023-05-31",
            "anthropic_beta": ["interleaved-thinking-2025-05-14"],
            "max_tokens": 5, "messages": []
        });
        let (msg, betas) = request_to_messages(&body, "claude-sonnet-4", true).unwrap();
        assert_eq!(
            msg,
            json!({"max_tokens": 5, "messages": [], "model": "claude-sonnet-4", "stream": true})
        );
        assert_eq!(betas, vec!["interleaved-thinking-2025-05-14"]);
        assert!(request_to_messages(&json!({"anthropic_beta": "x"}), "m", false).is_err());
        assert!(request_to_messages(&json!([]), "m", false).is_err());
    }

    fn chunk(event: &str) -> Message {
        let payload = json!({"bytes": B64.encode(event), "p": "abc"}).to_string();
        event_message("chunk", "application/json", payload.as_bytes())
    }

    #[test]
    fn chunks_become_anthropic_events_and_exceptions_errors() {
        let mut t = ChunksToSse::new();
        let mut out = Vec::new();
        t.message(
            &chunk(r#"{"type":"message_start","message":{"id":"msg_bdrk_1"}}"#),
            &mut out,
        );
        t.message(&chunk("{\"type\":\"ping\",\n \"x\": 1}"), &mut out);
        t.message(
            &event_message("somethingNew", "application/json", b"{}"),
            &mut out,
        );
        t.message(
            &exception_message("throttlingException", "Too many requests"),
            &mut out,
        );
        t.message(&chunk(r#"{"type":"message_stop"}"#), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bdrk_1\"}}\n\n\
             event: ping\ndata: {\"type\":\"ping\",\"x\":1}\n\n\
             event: error\ndata: {\"error\":{\"message\":\"Too many requests\",\"type\":\"rate_limit_error\"},\"type\":\"error\"}\n\n"
        );
    }

    #[test]
    fn a_bad_chunk_is_an_api_error() {
        for payload in [&b"nope"[..], br#"{"bytes":"!!"}"#, br#"{"bytes":"e30="}"#] {
            let mut t = ChunksToSse::new();
            let mut out = Vec::new();
            t.message(
                &event_message("chunk", "application/json", payload),
                &mut out,
            );
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.starts_with("event: error\n") && text.contains("api_error"),
                "{text}"
            );
        }
    }
}
