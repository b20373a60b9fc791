//! Streaming: upstream OpenAI chunks → Anthropic events (§3.6 A).
//!
//! Every event carries its `event:` line. Order produced:
//! `message_start` (on the first chunk) → per block `content_block_start`,
//! deltas, `content_block_stop` (indices 0, 1, 2… in order) →
//! `message_delta` (stop reason and usage) → `message_stop`.
//!
//! - `delta.content` opens a text block (closing an open thinking or tool
//!   block); `delta.reasoning_content`/`reasoning` a thinking block (empty
//!   signature: OpenAI has none).
//! - `delta.tool_calls[]` are keyed by their `index`; argument fragments
//!   that arrive before the name are buffered. One block is open at a time,
//!   as Anthropic requires. When a new call starts, the open call is closed
//!   if its arguments so far are complete JSON (the normal, sequential
//!   case) and the new one opens and streams at once; otherwise the calls
//!   are interleaved and the new call is buffered, then emitted whole (start,
//!   arguments, stop) once the open call is done or at the end.
//! - `finish_reason` and `usage` are both needed for `message_delta`; OpenAI
//!   sends usage in a later chunk, so the end is emitted when both are known,
//!   or at `[DONE]` with what is known.
//! - An `{"error":…}` chunk becomes `event: error` and nothing else follows
//!   from the translator; no `message_stop` is invented.
//! - Chunks without choices and without usage (Azure filter annotations) are
//!   skipped.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::errors;
use super::mapping::{anthropic_usage, stop_reason_from_openai, usage_from_openai};
use super::{Session, StreamTranslator};
use crate::wire::Dialect;
use crate::wire::sse::SseEvent;
use crate::wire::usage::Usage;

#[derive(Debug, Default)]
struct ToolState {
    /// Anthropic block index once opened.
    block: Option<usize>,
    id: Option<String>,
    name: Option<String>,
    /// Arguments received and not yet emitted.
    pending: String,
    /// Every argument fragment so far (to tell whether the call is complete).
    args: String,
    closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
    Thinking(usize),
}

/// The state of one translated stream.
#[derive(Debug)]
pub struct ChatToMessages {
    session: Session,
    started: bool,
    next_block: usize,
    open: Option<Open>,
    tools: BTreeMap<u64, ToolState>,
    /// The tool call whose block is open.
    current_tool: Option<u64>,
    stop_reason: Option<&'static str>,
    usage: Option<Usage>,
    ended: bool,
    failed: bool,
}

/// Boxed constructor for the translator table.
pub fn boxed(session: Session) -> Box<dyn StreamTranslator> {
    Box::new(ChatToMessages::new(session))
}

fn emit(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

impl ChatToMessages {
    /// A translator for one answer.
    pub fn new(session: Session) -> Self {
        Self {
            session,
            started: false,
            next_block: 0,
            open: None,
            tools: BTreeMap::new(),
            current_tool: None,
            stop_reason: None,
            usage: None,
            ended: false,
            failed: false,
        }
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = chunk
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("msg_switchboard");
        emit(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "content": [],
                "model": chunk.get("model").cloned().unwrap_or(Value::Null),
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
            }}),
        );
    }

    fn close_block(out: &mut Vec<u8>, index: usize) {
        emit(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
    }

    /// Closes the open text/thinking block and, when `tools` is set, the open tool block.
    fn close_open(&mut self, tools: bool, out: &mut Vec<u8>) {
        if let Some(o) = self.open.take() {
            Self::close_block(
                out,
                match o {
                    Open::Text(i) | Open::Thinking(i) => i,
                },
            );
        }
        if tools {
            self.close_current_tool(out);
        }
    }

    fn close_current_tool(&mut self, out: &mut Vec<u8>) {
        if let Some(key) = self.current_tool.take()
            && let Some(t) = self.tools.get_mut(&key)
            && let (Some(i), false) = (t.block, t.closed)
        {
            t.closed = true;
            Self::close_block(out, i);
        }
    }

    /// Opens the block of tool call `key` and emits its buffered arguments.
    fn open_tool(&mut self, key: u64, out: &mut Vec<u8>) {
        self.close_open(true, out);
        let i = self.next_block;
        let Some(entry) = self.tools.get_mut(&key) else {
            return;
        };
        self.next_block += 1;
        entry.block = Some(i);
        let id = entry.id.clone().unwrap_or_else(|| format!("call_{key}"));
        let name = self
            .session
            .tool_names
            .to_client(entry.name.as_deref().unwrap_or_default())
            .to_string();
        let partial = std::mem::take(&mut entry.pending);
        emit(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": i,
                "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        );
        self.current_tool = Some(key);
        Self::args_delta(out, i, partial);
    }

    fn args_delta(out: &mut Vec<u8>, index: usize, partial: String) {
        if !partial.is_empty() {
            emit(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": partial}}),
            );
        }
    }

    /// The open tool call's arguments so far are complete JSON.
    fn current_tool_complete(&self) -> bool {
        self.current_tool
            .and_then(|k| self.tools.get(&k))
            .is_none_or(|t| serde_json::from_str::<Value>(&t.args).is_ok())
    }

    fn tool_delta(&mut self, call: &Value, out: &mut Vec<u8>) {
        let key = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(self.tools.len() as u64);
        let entry = self.tools.entry(key).or_default();
        if let Some(id) = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            entry.id.get_or_insert_with(|| id.to_string());
        }
        if let Some(name) = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            entry.name.get_or_insert_with(|| name.to_string());
        }
        if let Some(args) = call.pointer("/function/arguments").and_then(Value::as_str) {
            entry.pending.push_str(args);
            entry.args.push_str(args);
        }
        match (entry.block, entry.closed) {
            (Some(i), false) => {
                let partial = std::mem::take(&mut entry.pending);
                Self::args_delta(out, i, partial);
            }
            (None, _)
                if entry.name.is_some()
                    && (self.current_tool.is_none() || self.current_tool_complete()) =>
            {
                self.open_tool(key, out);
            }
            // Arguments before the name, a buffered interleaved call, or a
            // fragment for a call already closed: kept for later.
            _ => {}
        }
    }

    /// Emits every buffered (interleaved) call in order, each whole.
    fn flush_buffered_tools(&mut self, out: &mut Vec<u8>) {
        let waiting: Vec<u64> = self
            .tools
            .iter()
            .filter(|(_, t)| t.block.is_none() && t.name.is_some())
            .map(|(k, _)| *k)
            .collect();
        for key in waiting {
            self.open_tool(key, out);
        }
    }

    fn text_like(&mut self, thinking: bool, text: &str, out: &mut Vec<u8>) {
        let current = match (self.open, thinking) {
            (Some(Open::Text(i)), false) | (Some(Open::Thinking(i)), true) => i,
            _ => {
                self.close_open(true, out);
                let i = self.next_block;
                self.next_block += 1;
                let block = if thinking {
                    json!({"type": "thinking", "thinking": "", "signature": ""})
                } else {
                    json!({"type": "text", "text": ""})
                };
                emit(
                    out,
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": i, "content_block": block}),
                );
                self.open = Some(if thinking {
                    Open::Thinking(i)
                } else {
                    Open::Text(i)
                });
                i
            }
        };
        let delta = if thinking {
            json!({"type": "thinking_delta", "thinking": text})
        } else {
            json!({"type": "text_delta", "text": text})
        };
        emit(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": current, "delta": delta}),
        );
    }

    fn maybe_end(&mut self, force: bool, out: &mut Vec<u8>) {
        if self.ended || self.failed || !self.started {
            return;
        }
        if !force && (self.stop_reason.is_none() || self.usage.is_none()) {
            return;
        }
        self.ended = true;
        self.flush_buffered_tools(out);
        self.close_open(true, out);
        let usage = self.usage.unwrap_or_default();
        emit(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": anthropic_usage(&usage)}),
        );
        emit(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

impl StreamTranslator for ChatToMessages {
    fn finished(&self) -> bool {
        self.ended
    }

    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.maybe_end(true, out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if chunk.get("error").is_some_and(|e| !e.is_null())
            || event.event.as_deref() == Some("error")
        {
            self.failed = true;
            out.extend(errors::stream_event(Dialect::Anthropic, data));
            return;
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        let usage = chunk.get("usage").filter(|u| u.is_object());
        if choices.is_none_or(|c| c.is_empty()) && usage.is_none() {
            return;
        }
        self.start(&chunk, out);
        if self.ended {
            return;
        }
        for choice in choices.into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            for key in ["reasoning_content", "reasoning"] {
                if let Some(t) = delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.text_like(true, t, out);
                }
            }
            for key in ["content", "refusal"] {
                if let Some(t) = delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.text_like(false, t, out);
                }
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for call in calls {
                    self.tool_delta(call, out);
                }
            }
            if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                self.stop_reason = Some(stop_reason_from_openai(Some(f)));
            }
        }
        if let Some(u) = usage {
            self.usage = Some(usage_from_openai(u));
        }
        self.maybe_end(false, out);
    }
}
