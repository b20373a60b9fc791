//! State machine: Anthropic Messages stream events → Responses events.
//!
//! `message_start` starts the response (ids from the message id) and
//! records input usage; each content block maps to one output item:
//! `text` → message item, `thinking` → reasoning item (its signature kept in
//! `encrypted_content` so the next request can replay it),
//! `redacted_thinking` → a complete reasoning item, `tool_use` → function
//! call (`input_json_delta` fragments → argument deltas). Server-tool blocks
//! and `citations_delta` are dropped. `content_block_stop` closes the item.
//! `message_delta` usage is cumulative (merged, never summed);
//! `message_stop` completes the response; `ping` becomes a keepalive
//! comment; `error` fails the response. Events are matched on the SSE
//! `event:` name, falling back to the data's `type`.
//!
//! An upstream that closes without `message_stop` completes only if a stop
//! reason was seen, otherwise the response fails.

use std::collections::BTreeMap;

use serde_json::Value;

use super::context::{Finish, ResponseContext};
use super::emit::{CallHandle, Emitter, ResponsesEvent};
use crate::wire::sse::SseEvent;
use crate::wire::usage::Usage;

#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    Thinking,
    Call(CallHandle),
    Dropped,
}

/// Translates one Anthropic Messages stream.
#[derive(Debug)]
pub struct MessagesStreamTranslator {
    emitter: Emitter,
    blocks: BTreeMap<u64, Block>,
    stop_reason: Option<String>,
    usage: Usage,
    saw_usage: bool,
}

impl MessagesStreamTranslator {
    /// A translator answering a request with `ctx`, stamped `created_at`.
    pub fn new(ctx: ResponseContext, created_at: u64) -> Self {
        Self {
            emitter: Emitter::new(ctx, created_at),
            blocks: BTreeMap::new(),
            stop_reason: None,
            usage: Usage::default(),
            saw_usage: false,
        }
    }

    /// The upstream usage seen so far (the true usage, for accounting).
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Whether the upstream reported usage.
    pub fn saw_usage(&self) -> bool {
        self.saw_usage
    }

    /// Whether a terminal event was written.
    pub fn finished(&self) -> bool {
        self.emitter.finished()
    }

    /// Translates one upstream event.
    pub fn on_event(&mut self, event: &SseEvent) -> Vec<ResponsesEvent> {
        let mut out = Vec::new();
        if self.emitter.finished() {
            return out;
        }
        let Ok(json) = serde_json::from_str::<Value>(event.data.trim()) else {
            return out;
        };
        let kind = event
            .event
            .as_deref()
            .or_else(|| json.get("type").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        let index = json.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "message_start" => {
                let id = json
                    .pointer("/message/id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.emitter.start(id, &mut out);
                if let Some(u) = json.pointer("/message/usage").filter(|u| u.is_object()) {
                    self.usage.merge_anthropic(u);
                    self.saw_usage = true;
                }
            }
            "content_block_start" => {
                self.emitter.start("", &mut out);
                let block = json.get("content_block").cloned().unwrap_or_default();
                let state = match block
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "text" => {
                        self.emitter.text(
                            block
                                .get("text")
                                .and_then(Value::as_str)
                                .unwrap_or_default(),
                            &mut out,
                        );
                        Block::Text
                    }
                    "thinking" => {
                        self.emitter.reasoning(
                            block
                                .get("thinking")
                                .and_then(Value::as_str)
                                .unwrap_or_default(),
                            &mut out,
                        );
                        if let Some(s) = block
                            .get("signature")
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                        {
                            self.emitter.reasoning_signature(s);
                        }
                        Block::Thinking
                    }
                    "redacted_thinking" => {
                        let data = block
                            .get("data")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        self.emitter.redacted_reasoning(data, &mut out);
                        Block::Dropped
                    }
                    "tool_use" => {
                        let id = block.get("id").and_then(Value::as_str).unwrap_or_default();
                        let name = block
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let h = self.emitter.call_start(id, name, &mut out);
                        if let Some(input) = block
                            .get("input")
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                        {
                            self.emitter.call_args(h, &input.to_string(), &mut out);
                        }
                        Block::Call(h)
                    }
                    _ => Block::Dropped,
                };
                self.blocks.insert(index, state);
            }
            "content_block_delta" => {
                let delta = json.get("delta").cloned().unwrap_or_default();
                let text = |key: &str| {
                    delta
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                match (
                    self.blocks.get(&index).copied(),
                    delta.get("type").and_then(Value::as_str),
                ) {
                    (Some(Block::Text), Some("text_delta")) => {
                        self.emitter.text(&text("text"), &mut out)
                    }
                    (Some(Block::Thinking), Some("thinking_delta")) => {
                        self.emitter.reasoning(&text("thinking"), &mut out)
                    }
                    (Some(Block::Thinking), Some("signature_delta")) => {
                        self.emitter.reasoning_signature(&text("signature"))
                    }
                    (Some(Block::Call(h)), Some("input_json_delta")) => {
                        self.emitter.call_args(h, &text("partial_json"), &mut out);
                    }
                    _ => {}
                }
            }
            "content_block_stop" => match self.blocks.remove(&index) {
                Some(Block::Text) => self.emitter.close_text(&mut out),
                Some(Block::Thinking) => self.emitter.close_reasoning(&mut out),
                Some(Block::Call(h)) => self.emitter.close_call(h, &mut out),
                Some(Block::Dropped) | None => {}
            },
            "message_delta" => {
                if let Some(u) = json.get("usage").filter(|u| u.is_object()) {
                    self.usage.merge_anthropic(u);
                    self.saw_usage = true;
                }
                if let Some(r) = json.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_owned());
                }
            }
            "message_stop" => self.complete(&mut out),
            "ping" => out.push(ResponsesEvent::Keepalive),
            "error" => {
                let code = json
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("api_error")
                    .to_owned();
                let message = json
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error")
                    .to_owned();
                self.on_failure(&code, &message, &mut out);
            }
            _ => {}
        }
        out
    }

    fn complete(&mut self, out: &mut Vec<ResponsesEvent>) {
        let finish = Finish::from_anthropic(self.stop_reason.as_deref());
        self.emitter.complete(finish, &self.usage, out);
    }

    /// The upstream stream ended (EOF).
    pub fn on_end(&mut self) -> Vec<ResponsesEvent> {
        let mut out = Vec::new();
        if self.emitter.finished() {
            return out;
        }
        if self.stop_reason.is_some() {
            self.complete(&mut out);
        } else {
            self.on_failure(
                "stream_truncated",
                "the upstream stream ended before the response was complete",
                &mut out,
            );
        }
        out
    }

    /// The stream failed on the gateway's side (stall, transport error).
    pub fn on_error(&mut self, code: &str, message: &str) -> Vec<ResponsesEvent> {
        let mut out = Vec::new();
        self.on_failure(code, message, &mut out);
        out
    }

    fn on_failure(&mut self, code: &str, message: &str, out: &mut Vec<ResponsesEvent>) {
        let usage = self.saw_usage.then_some(self.usage);
        self.emitter.fail(code, message, usage.as_ref(), out);
    }
}
