//! Masking streamed text, event by event, in the client's dialect.
//!
//! Text deltas of one channel (an OpenAI Chat choice, an Anthropic content
//! block, a Responses API output text part) are joined, and the last
//! [`HOLD_BYTES`] bytes are held back, so a pattern split across deltas
//! (`jane.doe@` + `example.com`) is still masked. Held text goes out with
//! the next delta, or in a delta the masker adds just before the channel
//! ends (finish reason, block stop, `[DONE]`, `output_text.done`, end of
//! stream); Responses API events that repeat the whole text are masked whole. The trade-off: streamed text reaches the
//! client up to [`HOLD_BYTES`] bytes later, and a match longer than that
//! can be partly released before it is complete. Tool-call arguments and
//! thinking deltas are not masked.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use super::mask::Masker;
use crate::wire::Dialect;
use crate::wire::sse::SseEvent;

/// Text held back per channel.
pub const HOLD_BYTES: usize = 64;

#[derive(Debug, Default)]
struct Channel {
    pending: String,
    /// The last delta event of the channel, reused to release held text,
    /// and the JSON pointer of its text.
    template: Option<(Option<String>, Value, &'static str)>,
}

/// Channel numbers of Responses API text parts (apart from Chat choices).
const RESPONSES_CHANNELS: u64 = 1 << 40;

/// The streaming masker of one response.
#[derive(Debug)]
pub struct SseMasker {
    masker: Arc<Masker>,
    dialect: Dialect,
    channels: BTreeMap<u64, Channel>,
}

impl SseMasker {
    /// A masker for a stream in `dialect`.
    pub fn new(masker: Arc<Masker>, dialect: Dialect) -> Self {
        Self {
            masker,
            dialect,
            channels: BTreeMap::new(),
        }
    }

    /// The events to send for one received event.
    pub fn on_event(&mut self, ev: SseEvent) -> Vec<SseEvent> {
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            // `[DONE]` or anything else that is not JSON: release everything first.
            let mut out = self.flush_all();
            out.push(ev);
            return out;
        };
        let responses_event = v
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("response."));
        match self.dialect {
            Dialect::OpenAI if responses_event => self.responses(ev.event, v),
            Dialect::OpenAI => self.openai(ev.event, &mut v),
            Dialect::Anthropic => self.anthropic(ev.event, v),
        }
    }

    /// Releases all held text (at the end of the stream).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        self.flush_all()
    }

    fn release(&mut self, index: u64, text: &str, flush: bool) -> String {
        let ch = self.channels.entry(index).or_default();
        ch.pending.push_str(text);
        let p = &ch.pending;
        let mut cut = if flush {
            p.len()
        } else {
            p.len().saturating_sub(HOLD_BYTES)
        };
        while !p.is_char_boundary(cut) {
            cut -= 1;
        }
        if !flush {
            let ranges = self.masker.matches(p);
            while let Some(r) = ranges.iter().find(|r| r.start < cut && cut < r.end) {
                cut = r.start;
            }
        }
        let out = self.masker.mask(&p[..cut]);
        ch.pending.drain(..cut);
        out
    }

    fn openai(&mut self, name: Option<String>, v: &mut Value) -> Vec<SseEvent> {
        let base = v.clone();
        if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
            for c in choices {
                let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                let finished = c.get("finish_reason").is_some_and(|f| !f.is_null());
                let text = c
                    .pointer("/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                match text {
                    Some(t) => {
                        // The chunk with only this choice, unfinished, releases held text later.
                        let mut choice = c.clone();
                        if let Some(obj) = choice.as_object_mut() {
                            obj.insert("finish_reason".into(), Value::Null);
                        }
                        let mut template = base.clone();
                        template["choices"] = Value::Array(vec![choice]);
                        let out = self.release(index, &t, finished);
                        if let Some(slot) = c.pointer_mut("/delta/content") {
                            *slot = Value::String(out);
                        }
                        self.channels.entry(index).or_default().template =
                            Some((name.clone(), template, "/choices/0/delta/content"));
                    }
                    None if finished => {
                        let rest = self.release(index, "", true);
                        if !rest.is_empty() {
                            let text = c.get_mut("delta").and_then(Value::as_object_mut);
                            if let Some(delta) = text {
                                delta.insert("content".into(), Value::String(rest));
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        vec![SseEvent {
            event: name,
            data: v.to_string(),
        }]
    }

    fn anthropic(&mut self, name: Option<String>, mut v: Value) -> Vec<SseEvent> {
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "content_block_delta"
                if v.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta") =>
            {
                let text = v
                    .pointer("/delta/text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let out = self.release(index, &text, false);
                if let Some(slot) = v.pointer_mut("/delta/text") {
                    *slot = Value::String(out);
                }
                self.channels.entry(index).or_default().template =
                    Some((name.clone(), v.clone(), "/delta/text"));
                vec![SseEvent {
                    event: name,
                    data: v.to_string(),
                }]
            }
            "content_block_stop" => {
                let mut out = self.flush(index);
                out.push(SseEvent {
                    event: name,
                    data: v.to_string(),
                });
                out
            }
            "message_delta" | "message_stop" | "error" => {
                let mut out = self.flush_all();
                out.push(SseEvent {
                    event: name,
                    data: v.to_string(),
                });
                out
            }
            _ => vec![SseEvent {
                event: name,
                data: v.to_string(),
            }],
        }
    }

    /// Responses API events: `response.output_text.delta` text is held and
    /// released like other deltas; every later event that repeats the text
    /// (`output_text.done`, `content_part.done`, `output_item.done`,
    /// `response.completed`, ...) is masked whole, after held text is released.
    fn responses(&mut self, name: Option<String>, mut v: Value) -> Vec<SseEvent> {
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let output = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let part = v.get("content_index").and_then(Value::as_u64).unwrap_or(0);
        let index = RESPONSES_CHANNELS + output * 1024 + part;
        if kind == "response.output_text.delta" {
            let text = v
                .get("delta")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let out = self.release(index, &text, false);
            v["delta"] = Value::String(out);
            self.channels.entry(index).or_default().template =
                Some((name.clone(), v.clone(), "/delta"));
            return vec![SseEvent {
                event: name,
                data: v.to_string(),
            }];
        }
        let mut out = if kind == "response.output_text.done" {
            self.flush(index)
        } else {
            Vec::new()
        };
        let ends_more = kind.ends_with(".done") && kind != "response.output_text.done";
        if ends_more
            || matches!(
                kind.as_str(),
                "response.completed" | "response.incomplete" | "response.failed"
            )
        {
            out.extend(self.flush_all());
        }
        self.masker.mask_json(&mut v);
        out.push(SseEvent {
            event: name,
            data: v.to_string(),
        });
        out
    }

    /// A delta event carrying the channel's held text, if any.
    fn flush(&mut self, index: u64) -> Vec<SseEvent> {
        let rest = self.release(index, "", true);
        let Some(ch) = self.channels.remove(&index) else {
            return Vec::new();
        };
        let Some((name, mut template, pointer)) = ch.template else {
            return Vec::new();
        };
        if rest.is_empty() {
            return Vec::new();
        }
        if let Some(slot) = template.pointer_mut(pointer) {
            *slot = Value::String(rest);
        }
        vec![SseEvent {
            event: name,
            data: template.to_string(),
        }]
    }

    fn flush_all(&mut self) -> Vec<SseEvent> {
        let keys: Vec<u64> = self.channels.keys().copied().collect();
        keys.into_iter().flat_map(|k| self.flush(k)).collect()
    }
}

/// Encodes one event in SSE framing.
pub fn encode(ev: &SseEvent, out: &mut BytesMut) {
    if let Some(name) = &ev.event {
        out.put_slice(b"event: ");
        out.put_slice(name.as_bytes());
        out.put_u8(b'\n');
    }
    for line in ev.data.split('\n') {
        out.put_slice(b"data: ");
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
}

/// Encodes events into one chunk (empty when there are none).
pub fn encode_all(events: &[SseEvent]) -> Bytes {
    let mut out = BytesMut::new();
    for ev in events {
        encode(ev, &mut out);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::guards::mask::tests::masker;

    fn openai_chunk(text: &str, finish: Option<&str>) -> SseEvent {
        SseEvent {
            event: None,
            data: json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}).to_string(),
        }
    }

    fn anthropic_delta(text: &str) -> SseEvent {
        SseEvent {
            event: Some("content_block_delta".into()),
            data: json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
                .to_string(),
        }
    }

    /// Every text the client receives, joined.
    fn text(events: &[SseEvent], dialect: Dialect) -> String {
        events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
            .filter_map(|v| match dialect {
                Dialect::OpenAI => v
                    .pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                Dialect::Anthropic => v
                    .pointer("/delta/text")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
            .collect()
    }

    #[test]
    fn an_email_split_across_openai_deltas_is_masked() {
        let mut m = SseMasker::new(Arc::new(masker(&[])), Dialect::OpenAI);
        let mut out = Vec::new();
        for part in ["Contact jane.", "doe@exam", "ple.com for ", "details."] {
            out.extend(m.on_event(openai_chunk(part, None)));
        }
        out.extend(m.on_event(openai_chunk("", Some("stop"))));
        out.extend(m.on_event(SseEvent {
            event: None,
            data: "[DONE]".into(),
        }));
        assert_eq!(
            text(&out, Dialect::OpenAI),
            "Contact [REDACTED] for details."
        );
        assert_eq!(out.last().unwrap().data, "[DONE]");
        // The finish chunk keeps its finish reason.
        let finish: Vec<_> = out.iter().filter(|e| e.data.contains("\"stop\"")).collect();
        assert_eq!(finish.len(), 1);
    }

    #[test]
    fn a_phone_number_split_across_anthropic_deltas_is_masked_before_block_stop() {
        let mut m = SseMasker::new(Arc::new(masker(&[])), Dialect::Anthropic);
        let mut out = Vec::new();
        for part in ["Call 555-", "123-", "4567 today"] {
            out.extend(m.on_event(anthropic_delta(part)));
        }
        let stop = SseEvent {
            event: Some("content_block_stop".into()),
            data: json!({"type": "content_block_stop", "index": 0}).to_string(),
        };
        out.extend(m.on_event(stop));
        assert_eq!(text(&out, Dialect::Anthropic), "Call [REDACTED] today");
        assert_eq!(
            out.last().unwrap().event.as_deref(),
            Some("content_block_stop")
        );
    }

    #[test]
    fn long_text_is_released_as_it_streams_and_held_text_flushed_at_the_end() {
        let mut m = SseMasker::new(Arc::new(masker(&[])), Dialect::OpenAI);
        let long = "x".repeat(200);
        let first = m.on_event(openai_chunk(&long, None));
        assert_eq!(text(&first, Dialect::OpenAI).len(), 200 - HOLD_BYTES);
        let rest = m.finish();
        assert_eq!(text(&rest, Dialect::OpenAI).len(), HOLD_BYTES);
    }

    #[test]
    fn responses_api_deltas_and_final_events_are_masked() {
        let mut m = SseMasker::new(Arc::new(masker(&[])), Dialect::OpenAI);
        let delta = |d: &str| {
            SseEvent {
            event: Some("response.output_text.delta".into()),
            data: json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": d}).to_string(),
        }
        };
        let mut out = Vec::new();
        for d in ["Write to jane", ".doe@example", ".com now"] {
            out.extend(m.on_event(delta(d)));
        }
        let full = "Write to jane.doe@example.com now";
        out.extend(m.on_event(SseEvent {
            event: Some("response.output_text.done".into()),
            data: json!({"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0, "text": full}).to_string(),
        }));
        out.extend(m.on_event(SseEvent {
            event: Some("response.completed".into()),
            data: json!({"type": "response.completed", "response": {"id": "resp_1", "output": [{"type": "message", "content": [{"type": "output_text", "text": full}]}]}}).to_string(),
        }));
        let deltas: String = out
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
            .filter(|v| v["type"] == "response.output_text.delta")
            .filter_map(|v| v["delta"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(deltas, "Write to [REDACTED] now");
        let all: String = out.iter().map(|e| e.data.clone()).collect();
        assert!(!all.contains("jane.doe"), "{all}");
        assert_eq!(
            out.last().unwrap().event.as_deref(),
            Some("response.completed")
        );
    }

    #[test]
    fn other_events_pass_through() {
        let mut m = SseMasker::new(Arc::new(masker(&[])), Dialect::Anthropic);
        let ping = SseEvent {
            event: Some("ping".into()),
            data: json!({"type": "ping"}).to_string(),
        };
        assert_eq!(m.on_event(ping.clone()), vec![ping]);
        let enc = encode_all(&[SseEvent {
            event: Some("a".into()),
            data: "x\ny".into(),
        }]);
        assert_eq!(&enc[..], b"event: a\ndata: x\ndata: y\n\n");
    }
}
