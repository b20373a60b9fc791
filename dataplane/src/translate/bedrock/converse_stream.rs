//! Streaming: Bedrock ConverseStream events → Anthropic SSE (`protocols.md`
//! §4.5). The output is what an Anthropic upstream would send, so the relay
//! reads usage from it and every client translation (Chat Completions,
//! Responses) runs on it unchanged.
//!
//! | ConverseStream event | Anthropic events |
//! |---|---|
//! | `messageStart` | `message_start` (id and model given; zero usage) |
//! | `contentBlockStart` toolUse | `content_block_start` tool_use (name restored) |
//! | `contentBlockDelta` text (no block open) | `content_block_start` text, then `text_delta` |
//! | `contentBlockDelta` toolUse.input | `input_json_delta` |
//! | `contentBlockDelta` reasoningContent.text / .signature | (`content_block_start` thinking) `thinking_delta` / `signature_delta` |
//! | `contentBlockDelta` reasoningContent.redactedContent | `content_block_start` redacted_thinking (complete) |
//! | `contentBlockStop` | `content_block_stop` |
//! | `messageStop` | held until `metadata` |
//! | `metadata` (usage) | `message_delta` (stop_reason, usage), `message_stop` |
//! | end of body after `messageStop` without `metadata` | `message_delta`, `message_stop` |
//! | exception / error message, broken framing | `error` (nothing after it) |
//!
//! Bedrock numbers every block (`contentBlockIndex`); Anthropic indices are
//! assigned in order of first appearance, and a block still open when
//! another starts is closed first (Anthropic blocks never interleave).
//! Unknown events and payload fields (the `p` padding) are ignored.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::converse_response::{anthropic_usage, stop_reason_to_anthropic, usage_from_converse};
use super::errors::{anthropic_error_event, kind_of, message_of};
use super::invoke::sse;
use crate::translate::names::ToolNames;
use crate::wire::ErrorKind;
use crate::wire::eventstream::{FrameError, FrameTranslator, Kind, Message};

/// What kind of Anthropic block is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A `redacted_thinking` block: complete in its start event.
    Redacted,
    Tool,
}

/// The state of one translated ConverseStream.
#[derive(Debug)]
pub struct ConverseToSse {
    id: String,
    model: String,
    names: ToolNames,
    started: bool,
    /// Bedrock block index → Anthropic index.
    indices: HashMap<u64, u64>,
    next_index: u64,
    /// The open block: (Bedrock index, Anthropic index, kind).
    open: Option<(u64, u64, Open)>,
    stop_reason: Option<String>,
    finished: bool,
    failed: bool,
}

impl ConverseToSse {
    /// A translator for one stream; `id` and `model` fill `message_start`,
    /// `names` restores shortened tool names.
    pub fn new(id: impl Into<String>, model: impl Into<String>, names: ToolNames) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            names,
            started: false,
            indices: HashMap::new(),
            next_index: 0,
            open: None,
            stop_reason: None,
            finished: false,
            failed: false,
        }
    }

    fn emit(out: &mut Vec<u8>, event: &str, data: &Value) {
        sse(out, event, &data.to_string());
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            Self::emit(
                out,
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
                }}),
            );
        }
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index, _)) = self.open.take() {
            Self::emit(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// Opens a block for Bedrock index `bedrock` (closing another open one)
    /// and returns its Anthropic index.
    fn open_block(&mut self, bedrock: u64, kind: Open, start: Value, out: &mut Vec<u8>) -> u64 {
        self.ensure_started(out);
        self.close_open(out);
        let index = self.next_index;
        self.next_index += 1;
        self.indices.insert(bedrock, index);
        self.open = Some((bedrock, index, kind));
        Self::emit(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        index
    }

    /// The Anthropic index of an open block of `kind` for `bedrock`, opening
    /// one with `start` when needed.
    fn block_for(&mut self, bedrock: u64, kind: Open, start: Value, out: &mut Vec<u8>) -> u64 {
        match self.open {
            Some((b, index, k)) if b == bedrock && k == kind => index,
            _ => self.open_block(bedrock, kind, start, out),
        }
    }

    fn delta(out: &mut Vec<u8>, index: u64, delta: Value) {
        Self::emit(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn finish(&mut self, usage: Option<&Value>, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.ensure_started(out);
        self.close_open(out);
        let stop = self.stop_reason.as_deref().unwrap_or("end_turn");
        // Without `metadata` the usage is unknown: only the required field.
        let usage = usage.map_or_else(
            || json!({"output_tokens": 0}),
            |u| anthropic_usage(&usage_from_converse(u)),
        );
        Self::emit(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason_to_anthropic(stop), "stop_sequence": null},
                "usage": usage}),
        );
        Self::emit(out, "message_stop", &json!({"type": "message_stop"}));
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        if !self.failed && !self.finished {
            self.failed = true;
            anthropic_error_event(kind, message, out);
        }
    }

    fn event(&mut self, event: &str, v: &Value, out: &mut Vec<u8>) {
        let bedrock = v
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match event {
            "messageStart" => self.ensure_started(out),
            "contentBlockStart" => {
                if let Some(tool) = v.pointer("/start/toolUse") {
                    let name = tool["name"].as_str().unwrap_or_default();
                    let start = json!({"type": "tool_use", "id": tool["toolUseId"], "name": self.names.to_client(name), "input": {}});
                    self.open_block(bedrock, Open::Tool, start, out);
                }
            }
            "contentBlockDelta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                if let Some(text) = d.get("text").and_then(Value::as_str) {
                    let i = self.block_for(
                        bedrock,
                        Open::Text,
                        json!({"type": "text", "text": ""}),
                        out,
                    );
                    Self::delta(out, i, json!({"type": "text_delta", "text": text}));
                } else if let Some(input) = d.pointer("/toolUse/input").and_then(Value::as_str) {
                    // A tool delta without its start: open an anonymous tool block.
                    let start = json!({"type": "tool_use", "id": format!("tooluse_{bedrock}"), "name": "", "input": {}});
                    let i = self.block_for(bedrock, Open::Tool, start, out);
                    Self::delta(
                        out,
                        i,
                        json!({"type": "input_json_delta", "partial_json": input}),
                    );
                } else if let Some(r) = d.get("reasoningContent") {
                    if let Some(data) = r.get("redactedContent") {
                        let start = json!({"type": "redacted_thinking", "data": data});
                        self.open_block(bedrock, Open::Redacted, start, out);
                    } else {
                        let start = json!({"type": "thinking", "thinking": "", "signature": ""});
                        let i = self.block_for(bedrock, Open::Thinking, start, out);
                        if let Some(t) = r.get("text").and_then(Value::as_str) {
                            Self::delta(out, i, json!({"type": "thinking_delta", "thinking": t}));
                        }
                        if let Some(s) = r.get("signature").and_then(Value::as_str) {
                            Self::delta(out, i, json!({"type": "signature_delta", "signature": s}));
                        }
                    }
                }
            }
            "contentBlockStop" if self.open.is_some_and(|(b, _, _)| b == bedrock) => {
                self.close_open(out);
            }
            "messageStop" => {
                self.ensure_started(out);
                self.close_open(out);
                self.stop_reason = Some(
                    v.get("stopReason")
                        .and_then(Value::as_str)
                        .unwrap_or("end_turn")
                        .to_string(),
                );
            }
            "metadata" if self.stop_reason.is_some() => self.finish(v.get("usage"), out),
            _ => {}
        }
    }
}

impl FrameTranslator for ConverseToSse {
    fn message(&mut self, msg: &Message, out: &mut Vec<u8>) {
        if self.failed || self.finished {
            return;
        }
        match msg.kind() {
            Kind::Event(event) => match serde_json::from_slice::<Value>(&msg.payload) {
                Ok(v) => self.event(event, &v, out),
                Err(e) => self.fail(
                    ErrorKind::Api,
                    &format!("malformed Bedrock stream: {event} is not JSON: {e}"),
                    out,
                ),
            },
            Kind::Exception(name) => {
                let message = message_of(&msg.payload);
                self.fail(kind_of(name), &message, out);
            }
            Kind::Error { code, message } => {
                self.fail(ErrorKind::Api, &format!("{code}: {message}"), out)
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

    fn end(&mut self, out: &mut Vec<u8>) {
        if !self.failed && self.stop_reason.is_some() {
            self.finish(None, out);
        }
    }
}
