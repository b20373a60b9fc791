//! Whole (non-streaming) answers translated to a Responses object.
//!
//! Both translations drive the same [`Emitter`] the streams use and return
//! the object its terminal event carries, so a streamed and a whole answer
//! always agree (items, ids, status, usage).

use serde_json::Value;

use super::context::{Finish, ResponseContext};
use super::emit::{Emitter, ResponsesEvent};
use crate::wire::usage::Usage;

fn final_object(out: Vec<ResponsesEvent>) -> Value {
    out.into_iter()
        .rev()
        .find_map(|e| match e {
            ResponsesEvent::Event { data, .. } => data.get("response").cloned(),
            ResponsesEvent::Keepalive => None,
        })
        .unwrap_or_default()
}

/// A Chat Completions response (`object: chat.completion`) as a Responses
/// object. `reasoning_content`/`reasoning` becomes a reasoning item, text
/// and refusal a message item, `tool_calls` function-call items (names
/// restored); `finish_reason: length` → `incomplete`.
pub fn from_chat_response(body: &Value, ctx: &ResponseContext, created_at: u64) -> Value {
    let mut e = Emitter::new(ctx.clone(), created_at);
    let mut out = Vec::new();
    e.start(
        body.get("id").and_then(Value::as_str).unwrap_or_default(),
        &mut out,
    );
    let choice = body.pointer("/choices/0").cloned().unwrap_or_default();
    let message = choice.get("message").cloned().unwrap_or_default();
    for key in ["reasoning_content", "reasoning"] {
        if let Some(r) = message
            .get(key)
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            e.reasoning(r, &mut out);
        }
    }
    for key in ["content", "refusal"] {
        if let Some(t) = message
            .get(key)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            e.text(t, &mut out);
        }
    }
    e.close_text(&mut out);
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (i, tc) in calls.iter().enumerate() {
            let id = tc
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("call_{i}"));
            let name = tc
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let args = tc
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let h = e.call_start(&id, name, &mut out);
            e.call_args(h, args, &mut out);
            e.close_call(h, &mut out);
        }
    }
    let usage = body
        .get("usage")
        .filter(|u| u.is_object())
        .map(Usage::from_openai)
        .unwrap_or_default();
    let finish = Finish::from_chat(choice.get("finish_reason").and_then(Value::as_str));
    e.complete(finish, &usage, &mut out);
    final_object(out)
}

/// An Anthropic Messages response (`type: message`) as a Responses object.
/// Text blocks → message items, thinking → reasoning items (signature in
/// `encrypted_content`), `tool_use` → function calls (names restored),
/// server-tool blocks dropped; `max_tokens` → `incomplete`.
pub fn from_messages_response(body: &Value, ctx: &ResponseContext, created_at: u64) -> Value {
    let mut e = Emitter::new(ctx.clone(), created_at);
    let mut out = Vec::new();
    e.start(
        body.get("id").and_then(Value::as_str).unwrap_or_default(),
        &mut out,
    );
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for b in &blocks {
        let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or_default();
        match s("type") {
            "text" => {
                e.text(s("text"), &mut out);
                e.close_text(&mut out);
            }
            "thinking" => {
                e.reasoning(s("thinking"), &mut out);
                if !s("signature").is_empty() {
                    e.reasoning_signature(s("signature"));
                }
                e.close_reasoning(&mut out);
            }
            "redacted_thinking" => e.redacted_reasoning(s("data"), &mut out),
            "tool_use" => {
                let h = e.call_start(s("id"), s("name"), &mut out);
                let input = b
                    .get("input")
                    .filter(|i| !i.is_null())
                    .map(Value::to_string)
                    .unwrap_or_default();
                e.call_args(h, &input, &mut out);
                e.close_call(h, &mut out);
            }
            _ => {}
        }
    }
    let usage = body
        .get("usage")
        .filter(|u| u.is_object())
        .map(Usage::from_anthropic)
        .unwrap_or_default();
    let finish = Finish::from_anthropic(body.get("stop_reason").and_then(Value::as_str));
    e.complete(finish, &usage, &mut out);
    final_object(out)
}
