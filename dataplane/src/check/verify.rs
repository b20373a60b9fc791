//! How the self-test judges an answer: what each agent needs to read in it
//! (pure functions of the answer; `Ok` carries a short detail, `Err` the
//! reason the agent would fail).

use bytes::Bytes;
use serde_json::Value;

use super::probes::Models;
use crate::wire::sse::{SseEvent, SseParser};

/// A whole answer as the check received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `content-type`, empty when missing.
    pub content_type: String,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|_| format!("the body is not JSON: {}", self.excerpt()))
    }

    /// The start of the body, printable, for reasons.
    fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(160)
            .collect();
        line.trim().to_owned()
    }

    /// `Err` unless the status is `want`; an error answer says why.
    fn expect_status(&self, want: u16) -> Result<(), String> {
        if self.status == want {
            return Ok(());
        }
        let why = self
            .json()
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| self.excerpt());
        Err(format!("HTTP {} (want {want}): {why}", self.status))
    }

    fn expect_event_stream(&self) -> Result<Vec<SseEvent>, String> {
        self.expect_status(200)?;
        if !self.content_type.starts_with("text/event-stream") {
            return Err(format!(
                "content-type {:?}, not text/event-stream",
                self.content_type
            ));
        }
        let mut parser = SseParser::default();
        let mut events: Vec<SseEvent> = parser.feed(&self.body).into_iter().flatten().collect();
        events.extend(parser.finish().and_then(Result::ok));
        if events.is_empty() {
            return Err("an empty stream".into());
        }
        Ok(events)
    }
}

fn data(e: &SseEvent) -> Option<Value> {
    serde_json::from_str(&e.data).ok()
}

/// The first in-stream error, if any, as a reason.
fn stream_error(events: &[SseEvent]) -> Option<String> {
    events.iter().find_map(|e| {
        let v = data(e)?;
        let is_error = e.event.as_deref() == Some("error")
            || v.get("error").is_some_and(|x| !x.is_null()) && v.get("choices").is_none()
            || v["type"] == "error"
            || v["type"] == "response.failed";
        is_error.then(|| {
            let message = v
                .pointer("/error/message")
                .or_else(|| v.pointer("/response/error/message"))
                .and_then(Value::as_str)
                .unwrap_or("no message");
            format!("the stream ended with an error: {message}")
        })
    })
}

/// Claude Code's stream: `message_start` first (pings aside), content,
/// `message_stop` last.
pub fn messages_stream(a: &Answer, _: &Models) -> Result<String, String> {
    let events = a.expect_event_stream()?;
    if let Some(e) = stream_error(&events) {
        return Err(e);
    }
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e.event.as_deref())
        .filter(|n| *n != "ping")
        .collect();
    if names.first() != Some(&"message_start") {
        return Err(format!(
            "the first event is {:?}, not message_start",
            names.first()
        ));
    }
    if names.last() != Some(&"message_stop") {
        return Err(format!(
            "the last event is {:?}, not message_stop",
            names.last()
        ));
    }
    if !names.contains(&"content_block_start") {
        return Err("no content block".into());
    }
    let model = events
        .iter()
        .filter_map(data)
        .find_map(|v| {
            v.pointer("/message/model")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Ok(format!("{} events, model {model}", events.len()))
}

/// An Anthropic client's expired token: 401 and `authentication_error`.
pub fn anthropic_401(a: &Answer, _: &Models) -> Result<String, String> {
    a.expect_status(401)?;
    let v = a.json()?;
    if v["type"] != "error" || v["error"]["type"] != "authentication_error" {
        return Err(format!(
            "not an Anthropic authentication_error: {}",
            a.excerpt()
        ));
    }
    Ok("401 authentication_error".into())
}

/// An OpenAI client's expired token: 401 in the OpenAI error shape.
pub fn openai_401(a: &Answer, _: &Models) -> Result<String, String> {
    a.expect_status(401)?;
    let v = a.json()?;
    if !v["error"]["message"].is_string() {
        return Err(format!("not an OpenAI error body: {}", a.excerpt()));
    }
    Ok("401".into())
}

/// Claude Code's model discovery: the Anthropic list shape. Claude Code
/// keeps the ids containing `claude` or `anthropic`.
pub fn anthropic_model_list(a: &Answer, m: &Models) -> Result<String, String> {
    a.expect_status(200)?;
    let v = a.json()?;
    let Some(list) = v["data"].as_array() else {
        return Err("no `data` list (not the Anthropic shape)".into());
    };
    if !v["has_more"].is_boolean() {
        return Err("no `has_more` (not the Anthropic shape)".into());
    }
    let ids: Vec<&str> = list.iter().filter_map(|e| e["id"].as_str()).collect();
    let kept = ids
        .iter()
        .filter(|id| id.contains("claude") || id.contains("anthropic"))
        .count();
    let listed = if ids.contains(&m.claude_code.as_str()) {
        "listed"
    } else {
        "not listed"
    };
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    Ok(format!(
        "{} model{}, {kept} kept by Claude Code; {} {listed}",
        ids.len(),
        plural(ids.len()),
        m.claude_code
    ))
}

/// Codex's model metadata: `{"models": [...]}`.
pub fn codex_model_list(a: &Answer, _: &Models) -> Result<String, String> {
    a.expect_status(200)?;
    let v = a.json()?;
    match v["models"].as_array() {
        Some(list) => Ok(format!("Codex shape, {} entries", list.len())),
        None => Err("no `models` list: Codex logs `failed to decode models response`".into()),
    }
}

/// Codex's stream: `response.created` first, every event numbered, a
/// terminal `response.completed` (or `response.incomplete`) last.
pub fn responses_stream(a: &Answer, _: &Models) -> Result<String, String> {
    let events = a.expect_event_stream()?;
    if let Some(e) = stream_error(&events) {
        return Err(e);
    }
    let values: Vec<Value> = events.iter().filter_map(data).collect();
    if values.len() != events.len() {
        return Err("an event whose data is not JSON".into());
    }
    let types: Vec<&str> = values.iter().filter_map(|v| v["type"].as_str()).collect();
    if types.first() != Some(&"response.created") {
        return Err(format!(
            "the first event is {:?}, not response.created",
            types.first()
        ));
    }
    if let Some(n) = values.iter().position(|v| !v["sequence_number"].is_u64()) {
        return Err(format!("event {n} has no sequence_number"));
    }
    match types.last() {
        Some(&"response.completed") | Some(&"response.incomplete") => {}
        other => {
            return Err(format!(
                "the last event is {other:?}, not response.completed"
            ));
        }
    }
    Ok(format!(
        "{} events, {}",
        events.len(),
        types.last().unwrap_or(&"")
    ))
}

/// OpenCode's stream: chunks, a usage chunk (asked for with
/// `include_usage`), `[DONE]` last.
pub fn chat_stream_with_usage(a: &Answer, _: &Models) -> Result<String, String> {
    let events = a.expect_event_stream()?;
    if let Some(e) = stream_error(&events) {
        return Err(e);
    }
    if events.last().map(|e| e.data.as_str()) != Some("[DONE]") {
        return Err("the stream does not end with [DONE]".into());
    }
    let chunks: Vec<Value> = events.iter().filter_map(data).collect();
    if chunks.len() + 1 != events.len() {
        return Err("a chunk whose data is not JSON".into());
    }
    let usage = chunks
        .iter()
        .rev()
        .find_map(|c| c.get("usage").filter(|u| u.is_object()))
        .ok_or("no usage chunk although stream_options.include_usage was set")?;
    let total = usage["total_tokens"].as_u64().unwrap_or(0);
    Ok(format!("{} chunks, usage {total} tokens", chunks.len()))
}

/// The Anthropic SDK's answer: a `message` with content and usage.
pub fn anthropic_message(a: &Answer, _: &Models) -> Result<String, String> {
    a.expect_status(200)?;
    let v = a.json()?;
    if v["type"] != "message" || !v["content"].is_array() {
        return Err(format!("not an Anthropic message: {}", a.excerpt()));
    }
    let Some(input) = v["usage"]["input_tokens"].as_u64() else {
        return Err("no usage.input_tokens".into());
    };
    Ok(format!("message, {input} input tokens"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(body: &str) -> Answer {
        Answer {
            status: 200,
            content_type: "text/event-stream".into(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: "application/json".into(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn models() -> Models {
        Models {
            claude_code: "claude-sonnet-4".into(),
            codex: "gpt-5".into(),
            openai: "gpt-5".into(),
            anthropic: "claude-sonnet-4".into(),
        }
    }

    #[test]
    fn a_messages_stream_needs_its_first_and_last_events() {
        let m = models();
        let good = "event: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4\"}}\n\nevent: content_block_start\ndata: {}\n\nevent: message_stop\ndata: {}\n\n";
        assert_eq!(
            messages_stream(&sse(good), &m).unwrap(),
            "4 events, model claude-sonnet-4"
        );
        let cut = "event: message_start\ndata: {}\n\nevent: content_block_start\ndata: {}\n\n";
        assert!(
            messages_stream(&sse(cut), &m)
                .unwrap_err()
                .contains("not message_stop")
        );
        let error = "event: message_start\ndata: {}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert_eq!(
            messages_stream(&sse(error), &m).unwrap_err(),
            "the stream ended with an error: Overloaded"
        );
        let refused = json(
            404,
            r#"{"type":"error","error":{"type":"not_found_error","message":"model x is not served"}}"#,
        );
        assert_eq!(
            messages_stream(&refused, &m).unwrap_err(),
            "HTTP 404 (want 200): model x is not served"
        );
        let mut not_sse = sse(good);
        not_sse.content_type = "application/json".into();
        assert!(
            messages_stream(&not_sse, &m)
                .unwrap_err()
                .contains("content-type")
        );
    }

    #[test]
    fn a_token_refresh_needs_a_401_in_the_clients_shape() {
        let m = models();
        let anthropic =
            r#"{"type":"error","error":{"type":"authentication_error","message":"expired"}}"#;
        assert!(anthropic_401(&json(401, anthropic), &m).is_ok());
        assert!(
            anthropic_401(&json(403, anthropic), &m)
                .unwrap_err()
                .starts_with("HTTP 403")
        );
        assert!(anthropic_401(&json(401, r#"{"error":{"message":"x"}}"#), &m).is_err());
        assert!(
            openai_401(
                &json(
                    401,
                    r#"{"error":{"message":"x","type":"authentication_error"}}"#
                ),
                &m
            )
            .is_ok()
        );
    }

    #[test]
    fn model_lists_in_each_clients_shape() {
        let m = models();
        let anthropic = r#"{"data":[{"id":"claude-sonnet-4"},{"id":"gpt-5"}],"has_more":false}"#;
        assert_eq!(
            anthropic_model_list(&json(200, anthropic), &m).unwrap(),
            "2 models, 1 kept by Claude Code; claude-sonnet-4 listed"
        );
        assert!(anthropic_model_list(&json(200, r#"{"object":"list","data":[]}"#), &m).is_err());
        assert!(codex_model_list(&json(200, r#"{"models":[]}"#), &m).is_ok());
        assert!(
            codex_model_list(&json(200, r#"{"object":"list","data":[]}"#), &m)
                .unwrap_err()
                .contains("failed to decode")
        );
    }

    #[test]
    fn a_responses_stream_is_numbered_and_completed() {
        let m = models();
        let good = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1}\n\n";
        assert!(responses_stream(&sse(good), &m).is_ok());
        let unnumbered = good.replace(",\"sequence_number\":1", "");
        assert_eq!(
            responses_stream(&sse(&unnumbered), &m).unwrap_err(),
            "event 1 has no sequence_number"
        );
    }

    #[test]
    fn a_chat_stream_needs_its_usage_chunk_and_done() {
        let m = models();
        let chunk = r#"data: {"choices":[{"index":0,"delta":{"content":"OK"}}]}"#;
        let usage = r#"data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;
        let good = format!("{chunk}\n\n{usage}\n\ndata: [DONE]\n\n");
        assert_eq!(
            chat_stream_with_usage(&sse(&good), &m).unwrap(),
            "2 chunks, usage 6 tokens"
        );
        let no_usage = format!("{chunk}\n\ndata: [DONE]\n\n");
        assert!(
            chat_stream_with_usage(&sse(&no_usage), &m)
                .unwrap_err()
                .contains("no usage chunk")
        );
        let no_done = format!("{chunk}\n\n{usage}\n\n");
        assert!(
            chat_stream_with_usage(&sse(&no_done), &m)
                .unwrap_err()
                .contains("[DONE]")
        );
    }

    #[test]
    fn an_anthropic_message_has_content_and_usage() {
        let m = models();
        let good = r#"{"type":"message","content":[{"type":"text","text":"OK"}],"usage":{"input_tokens":9,"output_tokens":1}}"#;
        assert_eq!(
            anthropic_message(&json(200, good), &m).unwrap(),
            "message, 9 input tokens"
        );
        assert!(anthropic_message(&json(200, r#"{"choices":[]}"#), &m).is_err());
    }
}
