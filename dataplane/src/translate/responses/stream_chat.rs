//! State machine: Chat Completions stream chunks → Responses events.
//!
//! Per chunk, in order: the first chunk starts the response (`created`,
//! `in_progress`, ids from the chunk id); `usage` (usually a late
//! `choices: []` chunk) is remembered; `delta.reasoning_content` /
//! `delta.reasoning` feed a reasoning item; `delta.content` and
//! `delta.refusal` feed the message item; `delta.tool_calls[]` are keyed by
//! `index`: a call opens once its name is known (argument fragments that
//! arrive earlier are held), fragments then stream as argument deltas, and
//! calls may interleave; `finish_reason` is remembered.
//!
//! Terminal rules: the response completes as soon as both the finish reason
//! and the usage are known (usually the late `choices: []` chunk), else at
//! `[DONE]`, with the remembered finish reason and usage; an upstream `{"error":…}` chunk fails it; an
//! upstream that closes without `[DONE]` completes only if a finish reason
//! was seen (the model had finished), otherwise fails — never a fake
//! completion.

use std::collections::BTreeMap;

use serde_json::Value;

use super::context::{Finish, ResponseContext};
use super::emit::{CallHandle, Emitter, ResponsesEvent};
use crate::wire::sse::SseEvent;
use crate::wire::usage::Usage;

#[derive(Debug, Default)]
struct Call {
    id: Option<String>,
    name: Option<String>,
    held: String,
    handle: Option<CallHandle>,
}

/// Translates one Chat Completions stream.
#[derive(Debug)]
pub struct ChatStreamTranslator {
    emitter: Emitter,
    calls: BTreeMap<u64, Call>,
    finish_reason: Option<String>,
    usage: Usage,
    saw_usage: bool,
}

impl ChatStreamTranslator {
    /// A translator answering a request with `ctx`, stamped `created_at`.
    pub fn new(ctx: ResponseContext, created_at: u64) -> Self {
        Self {
            emitter: Emitter::new(ctx, created_at),
            calls: BTreeMap::new(),
            finish_reason: None,
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
        let data = event.data.trim();
        if data == "[DONE]" {
            self.complete(&mut out);
            return out;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return out;
        };
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            let code = err
                .get("code")
                .and_then(Value::as_str)
                .or_else(|| err.get("type").and_then(Value::as_str))
                .unwrap_or("server_error");
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            let usage = self.saw_usage.then_some(self.usage);
            self.emitter.fail(code, message, usage.as_ref(), &mut out);
            return out;
        }
        self.emitter.start(
            chunk.get("id").and_then(Value::as_str).unwrap_or_default(),
            &mut out,
        );
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Usage::from_openai(u);
            self.saw_usage = true;
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            self.complete_when_known(&mut out);
            return out;
        };
        if let Some(delta) = choice.get("delta") {
            for key in ["reasoning_content", "reasoning"] {
                if let Some(r) = delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|r| !r.is_empty())
                {
                    self.emitter.reasoning(r, &mut out);
                }
            }
            for key in ["content", "refusal"] {
                if let Some(t) = delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.emitter.text(t, &mut out);
                }
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (pos, tc) in calls.iter().enumerate() {
                    self.tool_call(pos, tc, &mut out);
                }
            }
        }
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(r.to_owned());
        }
        self.complete_when_known(&mut out);
        out
    }

    /// Completes as soon as both the finish reason and the usage are known
    /// (the gateway always asks for the usage chunk, which comes last).
    fn complete_when_known(&mut self, out: &mut Vec<ResponsesEvent>) {
        if self.finish_reason.is_some() && self.saw_usage {
            self.complete(out);
        }
    }

    fn tool_call(&mut self, pos: usize, tc: &Value, out: &mut Vec<ResponsesEvent>) {
        let index = tc
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(pos as u64);
        let call = self.calls.entry(index).or_default();
        if let Some(id) = tc
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            call.id.get_or_insert_with(|| id.to_owned());
        }
        if let Some(name) = tc
            .pointer("/function/name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            call.name.get_or_insert_with(|| name.to_owned());
        }
        let fragment = tc
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match call.handle {
            Some(h) => self.emitter.call_args(h, fragment, out),
            None => {
                call.held.push_str(fragment);
                if let Some(name) = call.name.clone() {
                    let id = call.id.clone().unwrap_or_else(|| format!("call_{index}"));
                    let held = std::mem::take(&mut call.held);
                    let h = self.emitter.call_start(&id, &name, out);
                    if let Some(c) = self.calls.get_mut(&index) {
                        c.handle = Some(h);
                    }
                    self.emitter.call_args(h, &held, out);
                }
            }
        }
    }

    fn complete(&mut self, out: &mut Vec<ResponsesEvent>) {
        let finish = Finish::from_chat(self.finish_reason.as_deref());
        self.emitter.complete(finish, &self.usage, out);
    }

    /// The upstream stream ended (EOF).
    pub fn on_end(&mut self) -> Vec<ResponsesEvent> {
        let mut out = Vec::new();
        if self.emitter.finished() {
            return out;
        }
        if self.finish_reason.is_some() {
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
