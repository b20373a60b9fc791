//! Streaming: upstream Anthropic events → OpenAI chunks (§3.6 B).
//!
//! | Anthropic event                          | OpenAI output                                      |
//! |------------------------------------------|----------------------------------------------------|
//! | `message_start`                          | role chunk `{"role":"assistant","content":""}`      |
//! | `content_block_start` tool_use           | `tool_calls[{index:k,id,type,function{name,arguments:""}}]` |
//! | `text_delta`                             | `delta.content`                                     |
//! | `input_json_delta` (non-empty)           | `tool_calls[{index:k,function{arguments}}]`         |
//! | `thinking_delta` / `signature_delta`     | non-standard `delta.reasoning_content` / `reasoning_signature` |
//! | `content_block_stop` of an argless tool  | arguments `"{}"`                                     |
//! | `message_delta` with `stop_reason`       | `delta:{}` + `finish_reason`                        |
//! | `message_stop`                           | usage chunk (`choices: []`) only with `include_usage`, then `[DONE]` |
//! | `ping`                                   | `: keepalive` comment                               |
//! | `error`                                  | `data: {"error":{…}}`, no `[DONE]`                   |
//!
//! `id`, `created` and `model` are the same in every chunk; with
//! `include_usage` every choice chunk carries `"usage": null`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::errors;
use super::mapping::{finish_reason_from_anthropic, openai_usage};
use super::{Session, StreamTranslator};
use crate::wire::Dialect;
use crate::wire::sse::SseEvent;
use crate::wire::usage::Usage;

/// The state of one translated stream.
#[derive(Debug)]
pub struct MessagesToChat {
    session: Session,
    id: String,
    model: Value,
    role_sent: bool,
    /// Anthropic block index → (tool call index, arguments sent).
    tools: HashMap<u64, (usize, bool)>,
    next_tool: usize,
    usage: Usage,
    finished: bool,
}

/// Boxed constructor for the translator table.
pub fn boxed(session: Session) -> Box<dyn StreamTranslator> {
    Box::new(MessagesToChat::new(session))
}

impl MessagesToChat {
    /// A translator for one answer.
    pub fn new(session: Session) -> Self {
        Self {
            session,
            id: "chatcmpl-switchboard".into(),
            model: Value::Null,
            role_sent: false,
            tools: HashMap::new(),
            next_tool: 0,
            usage: Usage::default(),
            finished: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        let mut c = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.session.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]
        });
        if self.session.include_usage {
            c["usage"] = Value::Null;
        }
        push_data(out, &c);
    }

    fn ensure_role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent {
            self.role_sent = true;
            self.chunk(json!({"role": "assistant", "content": ""}), None, out);
        }
    }

    fn tool_args(&self, k: usize, args: &str, out: &mut Vec<u8>) {
        self.chunk(
            json!({"tool_calls": [{"index": k, "function": {"arguments": args}}]}),
            None,
            out,
        );
    }
}

fn push_data(out: &mut Vec<u8>, v: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

impl StreamTranslator for MessagesToChat {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        let kind = event
            .event
            .as_deref()
            .or_else(|| v.get("type").and_then(Value::as_str))
            .unwrap_or_default();
        match kind {
            "message_start" => {
                if let Some(id) = v.pointer("/message/id").and_then(Value::as_str) {
                    self.id = id.to_string();
                }
                self.model = v.pointer("/message/model").cloned().unwrap_or(Value::Null);
                if let Some(u) = v.pointer("/message/usage") {
                    self.usage.merge_anthropic(u);
                }
                self.ensure_role(out);
            }
            "content_block_start" => {
                self.ensure_role(out);
                let index = v["index"].as_u64().unwrap_or(0);
                let block = &v["content_block"];
                if block["type"] == "tool_use" {
                    let k = self.next_tool;
                    self.next_tool += 1;
                    let name = block["name"].as_str().unwrap_or_default();
                    let name = self.session.tool_names.to_client(name).to_string();
                    self.chunk(
                        json!({"tool_calls": [{"index": k, "id": block["id"], "type": "function",
                            "function": {"name": name, "arguments": ""}}]}),
                        None,
                        out,
                    );
                    let input = block
                        .get("input")
                        .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                    if let Some(input) = input {
                        self.tool_args(k, &input.to_string(), out);
                    }
                    self.tools.insert(index, (k, input.is_some()));
                }
            }
            "content_block_delta" => {
                self.ensure_role(out);
                let index = v["index"].as_u64().unwrap_or(0);
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        if let Some(t) = d["text"].as_str().filter(|t| !t.is_empty()) {
                            self.chunk(json!({"content": t}), None, out);
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(p) = d["partial_json"].as_str().filter(|p| !p.is_empty())
                            && let Some((k, sent)) = self.tools.get_mut(&index)
                        {
                            *sent = true;
                            let k = *k;
                            self.tool_args(k, p, out);
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = d["thinking"].as_str().filter(|t| !t.is_empty()) {
                            self.chunk(json!({"reasoning_content": t}), None, out);
                        }
                    }
                    Some("signature_delta") => {
                        if let Some(s) = d["signature"].as_str().filter(|s| !s.is_empty()) {
                            self.chunk(json!({"reasoning_signature": s}), None, out);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = v["index"].as_u64().unwrap_or(0);
                if let Some((k, false)) = self.tools.get(&index).copied() {
                    self.tool_args(k, "{}", out);
                    self.tools.insert(index, (k, true));
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.usage.merge_anthropic(u);
                }
                if let Some(stop) = v.pointer("/delta/stop_reason").and_then(Value::as_str)
                    && !self.finished
                {
                    self.finished = true;
                    self.ensure_role(out);
                    self.chunk(json!({}), Some(finish_reason_from_anthropic(stop)), out);
                }
            }
            "message_stop" => {
                if !self.finished {
                    self.finished = true;
                    self.ensure_role(out);
                    self.chunk(json!({}), Some("stop"), out);
                }
                if self.session.include_usage {
                    let c = json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.session.created,
                        "model": self.model, "choices": [], "usage": openai_usage(&self.usage)
                    });
                    push_data(out, &c);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            "ping" => out.extend_from_slice(b": keepalive\n\n"),
            "error" => out.extend(errors::stream_event(Dialect::OpenAI, &event.data)),
            _ => {}
        }
    }
}
