//! Front door streams: Anthropic SSE events (what the gateway holds after
//! any upstream, translated if needed) → Bedrock event-stream messages for a
//! Bedrock-format client. Both are [`StreamTranslator`]s, so the relay runs
//! them like any client translation; their output is binary framing.
//!
//! [`MessagesToInvokeFrames`] (`/invoke-with-response-stream`): every
//! Anthropic event becomes a `chunk` message `{"bytes": base64(event JSON)}`
//! — `ping`s too (they keep Claude Code's stall watchdog quiet). An `error`
//! event becomes an `exception` message.
//!
//! [`MessagesToConverseFrames`] (`/converse-stream`):
//!
//! | Anthropic | ConverseStream |
//! |---|---|
//! | `message_start` | `messageStart {role: assistant}` |
//! | `content_block_start` tool_use | `contentBlockStart {start:{toolUse:{toolUseId, name}}}` |
//! | `content_block_start` redacted_thinking | `contentBlockDelta {reasoningContent:{redactedContent}}` |
//! | `text_delta` / `input_json_delta` | `contentBlockDelta {text}` / `{toolUse:{input}}` |
//! | `thinking_delta` / `signature_delta` | `contentBlockDelta {reasoningContent:{text}}` / `{…:{signature}}` |
//! | `content_block_stop` | `contentBlockStop` |
//! | `message_delta` | stop reason and usage kept |
//! | `message_stop` | `messageStop {stopReason}`, `metadata {usage, metrics}` |
//! | `error` | an exception message (`throttlingException`, …) |
//! | `ping`, `citations_delta` | nothing |
//!
//! [`Chained`] puts a client translation in front of these when the
//! upstream is not Anthropic (an OpenAI backend behind the Bedrock front
//! door: OpenAI SSE → Anthropic SSE → Bedrock frames).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::converse_response::{converse_usage, stop_reason_to_converse};
use super::errors::{exception_for, kind_of_anthropic};
use crate::translate::StreamTranslator;
use crate::wire::ErrorKind;
use crate::wire::eventstream::{encode, event_message, exception_message};
use crate::wire::sse::{SseEvent, SseParser};
use crate::wire::usage::Usage;

fn event_kind<'a>(event: &'a SseEvent, v: &'a Value) -> &'a str {
    event
        .event
        .as_deref()
        .or_else(|| v.get("type").and_then(Value::as_str))
        .unwrap_or_default()
}

fn exception(out: &mut Vec<u8>, kind: ErrorKind, message: &str) {
    out.extend(encode(&exception_message(exception_for(kind), message)));
}

fn upstream_error(v: &Value) -> (ErrorKind, String) {
    let kind = kind_of_anthropic(
        v.pointer("/error/type")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    let message = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_string();
    (kind, message)
}

/// Anthropic events → InvokeModel `chunk` messages.
#[derive(Debug, Default)]
pub struct MessagesToInvokeFrames {
    /// Nothing more is emitted (terminal event or error sent).
    stopped: bool,
    /// `message_stop` was sent.
    complete: bool,
}

impl MessagesToInvokeFrames {
    /// A translator for one stream.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StreamTranslator for MessagesToInvokeFrames {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if self.stopped {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        match event_kind(event, &v) {
            "error" => {
                let (kind, message) = upstream_error(&v);
                exception(out, kind, &message);
                self.stopped = true;
            }
            kind => {
                let payload = json!({"bytes": B64.encode(event.data.as_bytes())}).to_string();
                out.extend(encode(&event_message(
                    "chunk",
                    "application/json",
                    payload.as_bytes(),
                )));
                if kind == "message_stop" {
                    self.stopped = true;
                    self.complete = true;
                }
            }
        }
    }

    fn error_event(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) -> bool {
        exception(out, kind, message);
        self.stopped = true;
        true
    }

    fn finished(&self) -> bool {
        self.complete
    }
}

/// Anthropic events → ConverseStream messages.
#[derive(Debug, Default)]
pub struct MessagesToConverseFrames {
    stop_reason: Option<String>,
    usage: Usage,
    /// Nothing more is emitted (terminal event or error sent).
    stopped: bool,
    /// `messageStop` and `metadata` were sent.
    complete: bool,
}

impl MessagesToConverseFrames {
    /// A translator for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn emit(out: &mut Vec<u8>, event: &str, payload: &Value) {
        out.extend(encode(&event_message(
            event,
            "application/json",
            payload.to_string().as_bytes(),
        )));
    }
}

impl StreamTranslator for MessagesToConverseFrames {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if self.stopped {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match event_kind(event, &v) {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    self.usage.merge_anthropic(u);
                }
                Self::emit(out, "messageStart", &json!({"role": "assistant"}));
            }
            "content_block_start" => {
                let b = v.get("content_block").unwrap_or(&Value::Null);
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use") => Self::emit(
                        out,
                        "contentBlockStart",
                        &json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": b["id"], "name": b["name"]}}}),
                    ),
                    Some("redacted_thinking") => Self::emit(
                        out,
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"redactedContent": b["data"]}}}),
                    ),
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                let delta = match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => json!({"text": d["text"]}),
                    Some("input_json_delta") => json!({"toolUse": {"input": d["partial_json"]}}),
                    Some("thinking_delta") => json!({"reasoningContent": {"text": d["thinking"]}}),
                    Some("signature_delta") => {
                        json!({"reasoningContent": {"signature": d["signature"]}})
                    }
                    _ => return,
                };
                Self::emit(
                    out,
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": index, "delta": delta}),
                );
            }
            "content_block_stop" => {
                Self::emit(
                    out,
                    "contentBlockStop",
                    &json!({"contentBlockIndex": index}),
                );
            }
            "message_delta" => {
                if let Some(s) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(s.to_string());
                }
                if let Some(u) = v.get("usage") {
                    self.usage.merge_anthropic(u);
                }
            }
            "message_stop" => {
                let stop = self.stop_reason.as_deref().unwrap_or("end_turn");
                Self::emit(
                    out,
                    "messageStop",
                    &json!({"stopReason": stop_reason_to_converse(stop)}),
                );
                Self::emit(
                    out,
                    "metadata",
                    &json!({"usage": converse_usage(&self.usage), "metrics": {"latencyMs": 0}}),
                );
                self.stopped = true;
                self.complete = true;
            }
            "error" => {
                let (kind, message) = upstream_error(&v);
                exception(out, kind, &message);
                self.stopped = true;
            }
            _ => {}
        }
    }

    fn error_event(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) -> bool {
        exception(out, kind, message);
        self.stopped = true;
        true
    }

    fn finished(&self) -> bool {
        self.complete
    }
}

/// Two stream translations in a row: `first`'s SSE output is parsed and fed
/// to `second`, whose output the client receives. Gateway-detected errors
/// go to `second` (the client's dialect); the stream is complete when
/// `second` says so.
pub struct Chained {
    first: Box<dyn StreamTranslator>,
    parser: SseParser,
    second: Box<dyn StreamTranslator>,
}

impl Chained {
    /// `first`, then `second`.
    pub fn new(first: Box<dyn StreamTranslator>, second: Box<dyn StreamTranslator>) -> Self {
        Self {
            first,
            parser: SseParser::default(),
            second,
        }
    }
}

impl StreamTranslator for Chained {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        let mut middle = Vec::new();
        self.first.event(event, &mut middle);
        for e in self.parser.feed(&middle).into_iter().flatten() {
            self.second.event(&e, out);
        }
    }

    fn error_event(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) -> bool {
        self.second.error_event(kind, message, out)
    }

    fn finished(&self) -> bool {
        self.second.finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{Session, stream_chat_to_messages};
    use crate::wire::eventstream::{Decoder, Kind};

    fn data(json: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: json.to_string(),
        }
    }

    /// An OpenAI upstream behind the Converse front door: chunks → Anthropic
    /// events → Converse event messages, usage included.
    #[test]
    fn chat_chunks_reach_a_converse_client() {
        let mut t = Chained::new(
            stream_chat_to_messages::boxed(Session::default()),
            Box::new(MessagesToConverseFrames::new()),
        );
        let mut wire = Vec::new();
        for chunk in [
            r#"{"id":"c1","object":"chat.completion.chunk","model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#,
            r#"{"id":"c1","object":"chat.completion.chunk","model":"gpt","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#,
            r#"{"id":"c1","object":"chat.completion.chunk","model":"gpt","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"id":"c1","object":"chat.completion.chunk","model":"gpt","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}"#,
            "[DONE]",
        ] {
            t.event(&data(chunk), &mut wire);
        }
        assert!(t.finished());
        let mut d = Decoder::default();
        d.feed(&wire);
        let mut kinds = Vec::new();
        let mut text = String::new();
        let mut metadata = Value::Null;
        while let Some(m) = d.next_message().unwrap() {
            let Kind::Event(kind) = m.kind() else {
                panic!("not an event")
            };
            let v: Value = serde_json::from_slice(&m.payload).unwrap();
            if kind == "contentBlockDelta" {
                text.push_str(v["delta"]["text"].as_str().unwrap());
            }
            if kind == "metadata" {
                metadata = v.clone();
            }
            kinds.push(kind.to_string());
        }
        assert_eq!(kinds.first().map(String::as_str), Some("messageStart"));
        assert_eq!(&kinds[kinds.len() - 2..], ["messageStop", "metadata"]);
        assert_eq!(text, "Hello");
        assert_eq!(metadata["usage"]["inputTokens"], 7);
        assert_eq!(metadata["usage"]["outputTokens"], 2);
    }

    #[test]
    fn gateway_errors_reach_the_client_as_exceptions() {
        let mut t = Chained::new(
            stream_chat_to_messages::boxed(Session::default()),
            Box::new(MessagesToInvokeFrames::new()),
        );
        let mut wire = Vec::new();
        assert!(t.error_event(ErrorKind::Timeout, "stalled", &mut wire));
        let mut d = Decoder::default();
        d.feed(&wire);
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(m.kind(), Kind::Exception("modelTimeoutException"));
        assert!(!t.finished(), "an error is not a complete answer");
    }
}
