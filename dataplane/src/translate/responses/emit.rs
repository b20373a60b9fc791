//! The Responses event writer both stream state machines drive.
//!
//! It owns everything the client relies on: one `response.created` and one
//! `response.in_progress` first; each output item announced with
//! `response.output_item.added` and finished with `response.output_item.done`
//! at a fixed `output_index`; text inside a message item as one
//! `output_text` part (`content_part.added`, `output_text.delta`…,
//! `output_text.done`, `content_part.done`); function-call arguments as
//! `function_call_arguments.delta`… then `.done`; reasoning as one summary
//! part; a `sequence_number` on every event, counting from 0; and exactly
//! one terminal event: `response.completed` / `response.incomplete` (clean
//! end) or `response.failed` (upstream error or truncation). Nothing is
//! written after the terminal event.
//!
//! A message or reasoning item closes when any other item starts; function
//! calls stay open until they are closed explicitly or the response ends, so
//! interleaved argument fragments of parallel calls are legal.

use bytes::Bytes;
use serde_json::{Value, json};

use super::context::{Finish, ResponseContext, ThinkingBlock, reasoning_item, usage_json};
use crate::wire::usage::Usage;

/// One Responses stream event.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponsesEvent {
    /// A named event whose data carries `type` (= the name) and
    /// `sequence_number`.
    Event {
        /// The event name (`response.created`, …).
        name: &'static str,
        /// The JSON data.
        data: Value,
    },
    /// An SSE comment that keeps the connection alive.
    Keepalive,
}

impl ResponsesEvent {
    /// The SSE bytes: `event: <name>\ndata: <json>\n\n`.
    pub fn to_sse(&self) -> Bytes {
        match self {
            ResponsesEvent::Event { name, data } => {
                Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
            }
            ResponsesEvent::Keepalive => Bytes::from_static(b": keepalive\n\n"),
        }
    }

    /// The event name, `None` for a keepalive.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            ResponsesEvent::Event { name, .. } => Some(name),
            ResponsesEvent::Keepalive => None,
        }
    }
}

#[derive(Debug)]
enum Kind {
    Message,
    Reasoning { signature: Option<String> },
    Call { call_id: String, name: String },
}

#[derive(Debug)]
struct Slot {
    id: String,
    kind: Kind,
    /// Text, reasoning text or arguments so far.
    text: String,
    /// The finished item, once closed.
    done: Option<Value>,
}

/// Writes one Responses stream.
#[derive(Debug)]
pub struct Emitter {
    ctx: ResponseContext,
    created_at: u64,
    id: String,
    base: String,
    seq: u64,
    started: bool,
    finished: bool,
    slots: Vec<Slot>,
    open_message: Option<usize>,
    open_reasoning: Option<usize>,
}

/// A handle on an open function call (its output index).
pub type CallHandle = usize;

fn id_base(upstream_id: &str) -> String {
    let s: String = upstream_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if s.is_empty() { "gw".to_owned() } else { s }
}

impl Emitter {
    /// A writer answering a request with `ctx`, stamped `created_at`.
    pub fn new(ctx: ResponseContext, created_at: u64) -> Self {
        Self {
            ctx,
            created_at,
            id: String::new(),
            base: String::new(),
            seq: 0,
            started: false,
            finished: false,
            slots: Vec::new(),
            open_message: None,
            open_reasoning: None,
        }
    }

    /// `response.created` was written.
    pub fn started(&self) -> bool {
        self.started
    }

    /// A terminal event was written.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The response id (empty before [`Emitter::start`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn event(&mut self, name: &'static str, mut data: Value, out: &mut Vec<ResponsesEvent>) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(ResponsesEvent::Event { name, data });
    }

    /// Writes `response.created` and `response.in_progress`, with ids derived
    /// from the upstream's message id. Does nothing once started.
    pub fn start(&mut self, upstream_id: &str, out: &mut Vec<ResponsesEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        self.base = id_base(upstream_id);
        self.id = format!("resp_{}", self.base);
        let shell = Value::Object(self.ctx.shell(&self.id, self.created_at, "in_progress"));
        self.event("response.created", json!({"response": shell.clone()}), out);
        self.event("response.in_progress", json!({"response": shell}), out);
    }

    fn add_slot(&mut self, prefix: &str, kind: Kind) -> usize {
        let index = self.slots.len();
        self.slots.push(Slot {
            id: format!("{prefix}_{}_{index}", self.base),
            kind,
            text: String::new(),
            done: None,
        });
        index
    }

    /// Appends text to the open message item, opening one if needed.
    pub fn text(&mut self, delta: &str, out: &mut Vec<ResponsesEvent>) {
        if self.finished {
            return;
        }
        let index = match self.open_message {
            Some(i) => i,
            None => {
                self.close_reasoning(out);
                let i = self.add_slot("msg", Kind::Message);
                self.open_message = Some(i);
                let id = self.slots[i].id.clone();
                self.event(
                    "response.output_item.added",
                    json!({"output_index": i, "item": {"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
                    out,
                );
                self.event(
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": i, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
                    out,
                );
                i
            }
        };
        if delta.is_empty() {
            return;
        }
        self.slots[index].text.push_str(delta);
        let id = self.slots[index].id.clone();
        self.event(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
            out,
        );
    }

    /// Closes the open message item, if any.
    pub fn close_text(&mut self, out: &mut Vec<ResponsesEvent>) {
        let Some(i) = self.open_message.take() else {
            return;
        };
        let id = self.slots[i].id.clone();
        let text = self.slots[i].text.clone();
        let part = json!({"type": "output_text", "text": text, "annotations": []});
        self.event(
            "response.output_text.done",
            json!({"item_id": id, "output_index": i, "content_index": 0, "text": text, "logprobs": []}),
            out,
        );
        self.event(
            "response.content_part.done",
            json!({"item_id": id, "output_index": i, "content_index": 0, "part": part}),
            out,
        );
        let item = json!({"id": id, "type": "message", "status": "completed", "role": "assistant", "content": [part]});
        self.finish_slot(i, item, out);
    }

    fn finish_slot(&mut self, i: usize, item: Value, out: &mut Vec<ResponsesEvent>) {
        self.slots[i].done = Some(item.clone());
        self.event(
            "response.output_item.done",
            json!({"output_index": i, "item": item}),
            out,
        );
    }

    /// Appends reasoning text to the open reasoning item, opening one if
    /// needed.
    pub fn reasoning(&mut self, delta: &str, out: &mut Vec<ResponsesEvent>) {
        if self.finished {
            return;
        }
        let index = match self.open_reasoning {
            Some(i) => i,
            None => {
                self.close_text(out);
                let i = self.add_slot("rs", Kind::Reasoning { signature: None });
                self.open_reasoning = Some(i);
                let id = self.slots[i].id.clone();
                self.event(
                    "response.output_item.added",
                    json!({"output_index": i, "item": {"id": id, "type": "reasoning", "summary": []}}),
                    out,
                );
                self.event(
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id, "output_index": i, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                    out,
                );
                i
            }
        };
        if delta.is_empty() {
            return;
        }
        self.slots[index].text.push_str(delta);
        let id = self.slots[index].id.clone();
        self.event(
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
            out,
        );
    }

    /// Records the signature of the open reasoning item (Anthropic).
    pub fn reasoning_signature(&mut self, signature: &str) {
        if let Some(i) = self.open_reasoning
            && let Kind::Reasoning { signature: s, .. } = &mut self.slots[i].kind
        {
            s.get_or_insert_with(String::new).push_str(signature);
        }
    }

    /// Closes the open reasoning item, if any.
    pub fn close_reasoning(&mut self, out: &mut Vec<ResponsesEvent>) {
        let Some(i) = self.open_reasoning.take() else {
            return;
        };
        let id = self.slots[i].id.clone();
        let text = self.slots[i].text.clone();
        self.event(
            "response.reasoning_summary_text.done",
            json!({"item_id": id, "output_index": i, "summary_index": 0, "text": text}),
            out,
        );
        self.event(
            "response.reasoning_summary_part.done",
            json!({"item_id": id, "output_index": i, "summary_index": 0, "part": {"type": "summary_text", "text": text}}),
            out,
        );
        let block = match &self.slots[i].kind {
            Kind::Reasoning {
                signature: Some(s), ..
            } => Some(ThinkingBlock::Thinking {
                thinking: text.clone(),
                signature: s.clone(),
            }),
            _ => None,
        };
        let item = reasoning_item(&id, &text, block.as_ref());
        self.finish_slot(i, item, out);
    }

    /// A complete redacted reasoning item (Anthropic `redacted_thinking`).
    pub fn redacted_reasoning(&mut self, data: &str, out: &mut Vec<ResponsesEvent>) {
        if self.finished {
            return;
        }
        self.close_text(out);
        self.close_reasoning(out);
        let i = self.add_slot("rs", Kind::Reasoning { signature: None });
        let id = self.slots[i].id.clone();
        self.event(
            "response.output_item.added",
            json!({"output_index": i, "item": {"id": id, "type": "reasoning", "summary": []}}),
            out,
        );
        let item = reasoning_item(
            &id,
            "",
            Some(&ThinkingBlock::Redacted {
                data: data.to_owned(),
            }),
        );
        self.finish_slot(i, item, out);
    }

    /// Opens a function-call item; closes an open message or reasoning item.
    pub fn call_start(
        &mut self,
        call_id: &str,
        upstream_name: &str,
        out: &mut Vec<ResponsesEvent>,
    ) -> CallHandle {
        self.close_text(out);
        self.close_reasoning(out);
        let i = self.add_slot(
            "fc",
            Kind::Call {
                call_id: call_id.to_owned(),
                name: upstream_name.to_owned(),
            },
        );
        if self.finished {
            return i;
        }
        let id = self.slots[i].id.clone();
        let item = self
            .ctx
            .function_call_item(&id, call_id, upstream_name, "", "in_progress");
        self.event(
            "response.output_item.added",
            json!({"output_index": i, "item": item}),
            out,
        );
        i
    }

    /// Appends an argument fragment to an open call.
    pub fn call_args(&mut self, call: CallHandle, delta: &str, out: &mut Vec<ResponsesEvent>) {
        if self.finished || delta.is_empty() {
            return;
        }
        let Some(slot) = self.slots.get_mut(call).filter(|s| s.done.is_none()) else {
            return;
        };
        slot.text.push_str(delta);
        let id = slot.id.clone();
        self.event(
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": call, "delta": delta}),
            out,
        );
    }

    /// Closes an open call. A call that received no arguments gets `{}`.
    pub fn close_call(&mut self, call: CallHandle, out: &mut Vec<ResponsesEvent>) {
        if self.finished {
            return;
        }
        let Some(slot) = self.slots.get(call).filter(|s| s.done.is_none()) else {
            return;
        };
        let Kind::Call { call_id, name } = &slot.kind else {
            return;
        };
        let (call_id, name, id) = (call_id.clone(), name.clone(), slot.id.clone());
        if slot.text.is_empty() {
            self.call_args(call, "{}", out);
        }
        let arguments = self.slots[call].text.clone();
        let (_, client_name) = self.ctx.names.restore(&name);
        self.event(
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": call, "name": client_name, "arguments": arguments}),
            out,
        );
        let item = self
            .ctx
            .function_call_item(&id, &call_id, &name, &arguments, "completed");
        self.finish_slot(call, item, out);
    }

    fn close_all(&mut self, out: &mut Vec<ResponsesEvent>) {
        self.close_text(out);
        self.close_reasoning(out);
        for i in 0..self.slots.len() {
            if self.slots[i].done.is_none() && matches!(self.slots[i].kind, Kind::Call { .. }) {
                self.close_call(i, out);
            }
        }
    }

    fn output(&self) -> Vec<Value> {
        self.slots.iter().filter_map(|s| s.done.clone()).collect()
    }

    /// Ends the stream cleanly: closes every open item and writes
    /// `response.completed` (or `response.incomplete`) with the output and
    /// `usage`.
    pub fn complete(&mut self, finish: Finish, usage: &Usage, out: &mut Vec<ResponsesEvent>) {
        if self.finished {
            return;
        }
        self.start("", out);
        self.close_all(out);
        let mut response = self.ctx.shell(&self.id, self.created_at, finish.status());
        response.insert("incomplete_details".into(), finish.incomplete_details());
        response.insert("output".into(), json!(self.output()));
        response.insert("usage".into(), usage_json(usage));
        let name = match finish {
            Finish::Completed => "response.completed",
            _ => "response.incomplete",
        };
        self.event(name, json!({"response": response}), out);
        self.finished = true;
    }

    /// Ends the stream with `response.failed` carrying `code` and `message`
    /// (items still open are left unfinished, as OpenAI does).
    pub fn fail(
        &mut self,
        code: &str,
        message: &str,
        usage: Option<&Usage>,
        out: &mut Vec<ResponsesEvent>,
    ) {
        if self.finished {
            return;
        }
        self.start("", out);
        let mut response = self.ctx.shell(&self.id, self.created_at, "failed");
        response.insert("error".into(), json!({"code": code, "message": message}));
        response.insert("output".into(), json!(self.output()));
        if let Some(u) = usage {
            response.insert("usage".into(), usage_json(u));
        }
        self.event("response.failed", json!({"response": response}), out);
        self.finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(out: &[ResponsesEvent]) -> Vec<&'static str> {
        out.iter().filter_map(ResponsesEvent::name).collect()
    }

    #[test]
    fn sequence_numbers_count_from_zero_and_nothing_follows_the_end() {
        let mut e = Emitter::new(ResponseContext::default(), 7);
        let mut out = Vec::new();
        e.start("x", &mut out);
        e.text("a", &mut out);
        e.complete(Finish::Completed, &Usage::default(), &mut out);
        e.text("late", &mut out);
        e.fail("x", "y", None, &mut out);
        for (n, ev) in out.iter().enumerate() {
            let ResponsesEvent::Event { data, name } = ev else {
                panic!()
            };
            assert_eq!(data["sequence_number"], n);
            assert_eq!(data["type"], *name);
        }
        assert_eq!(
            names(&out),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
    }

    #[test]
    fn parallel_calls_stay_open_and_empty_arguments_become_an_object() {
        let mut e = Emitter::new(ResponseContext::default(), 0);
        let mut out = Vec::new();
        e.start("x", &mut out);
        let a = e.call_start("ca", "f", &mut out);
        let b = e.call_start("cb", "g", &mut out);
        e.call_args(b, "{\"y\":", &mut out);
        e.call_args(a, "{\"x\":1}", &mut out);
        e.call_args(b, "2}", &mut out);
        let c = e.call_start("cc", "h", &mut out);
        e.complete(Finish::Completed, &Usage::default(), &mut out);
        let ResponsesEvent::Event { data, .. } = out.last().unwrap() else {
            panic!()
        };
        let output = data["response"]["output"].as_array().unwrap();
        let args: Vec<&str> = output
            .iter()
            .map(|i| i["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(args, ["{\"x\":1}", "{\"y\":2}", "{}"]);
        assert_eq!(c, 2);
    }

    #[test]
    fn failure_is_terminal_and_carries_the_error() {
        let mut e = Emitter::new(ResponseContext::default(), 0);
        let mut out = Vec::new();
        e.fail("server_error", "boom", None, &mut out);
        assert_eq!(
            names(&out),
            [
                "response.created",
                "response.in_progress",
                "response.failed"
            ]
        );
        let ResponsesEvent::Event { data, .. } = &out[2] else {
            panic!()
        };
        assert_eq!(data["response"]["status"], "failed");
        assert_eq!(data["response"]["error"]["message"], "boom");
        assert!(e.finished());
    }

    #[test]
    fn sse_framing() {
        let ev = ResponsesEvent::Event {
            name: "response.created",
            data: json!({"a":1}),
        };
        assert_eq!(
            &ev.to_sse()[..],
            b"event: response.created\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(&ResponsesEvent::Keepalive.to_sse()[..], b": keepalive\n\n");
    }
}
