//! Joins a continuation stream (client format, as its relay produced it) to
//! what the client already received, event by event:
//!
//! - Anthropic: the new `message_start` is dropped; the first text block
//!   continues the client's open text block (its start dropped, its deltas
//!   and stop re-indexed to it), later blocks are numbered after the
//!   client's; thinking blocks of the continuation are not shown.
//! - OpenAI Chat: chunks keep the first stream's `id`, `model` and
//!   `created`; the role announcement is dropped.
//! - Restart: text is dropped while it reproduces what was sent, and passed
//!   on from where the sent text ends. Anything else before that point (other
//!   text, a tool call, the end of the answer) is [`Diverged`]: the caller
//!   ends the stream with an error, nothing of the divergent answer is sent.
//! - Prefill: the whitespace left out of the prefill is dropped once from
//!   the continuation's first text.

use std::collections::HashMap;

use serde_json::Value;

use super::Strategy;
use super::sent::{Block, Sent};
use crate::wire::Dialect;
use crate::wire::sse::{DEFAULT_MAX_EVENT_BYTES, SseEvent, SseParser};

/// The continuation does not extend what the client received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diverged;

/// Joins one continuation stream to the client's stream.
#[derive(Debug)]
pub struct Splicer {
    dialect: Dialect,
    parser: SseParser,
    restart: bool,
    /// Text still to reproduce (restart) or whitespace to drop (prefill).
    skip: String,
    /// Anthropic: the client's open text block, joined by the first text block.
    open_text: Option<u64>,
    next_index: u64,
    /// Anthropic: continuation block index → client index (`None`: hidden).
    blocks: HashMap<u64, Option<u64>>,
    joined: bool,
    /// OpenAI: the first stream's `id`, `model`, `created`.
    identity: Option<(Value, Value, Value)>,
}

impl Splicer {
    /// A splicer for a continuation joining `sent` by `strategy`.
    pub fn new(dialect: Dialect, sent: &Sent, strategy: &Strategy) -> Self {
        let (restart, skip) = match strategy {
            Strategy::Restart => (true, sent.text.clone()),
            Strategy::Prefill { trimmed } => (false, trimmed.clone()),
        };
        Self {
            dialect,
            parser: SseParser::new(DEFAULT_MAX_EVENT_BYTES),
            restart,
            skip,
            open_text: match sent.open {
                Some((i, Block::Text)) => Some(i),
                _ => None,
            },
            next_index: sent.next_index,
            blocks: HashMap::new(),
            joined: false,
            identity: sent.chunk_identity.clone(),
        }
    }

    /// The client bytes for continuation bytes `bytes`.
    pub fn splice(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Diverged> {
        let mut out = Vec::with_capacity(bytes.len());
        for event in self.parser.feed(bytes).into_iter().flatten() {
            match self.dialect {
                Dialect::Anthropic => self.anthropic(&event, &mut out)?,
                Dialect::OpenAI => self.openai(&event, &mut out)?,
            }
        }
        Ok(out)
    }

    /// Whether text still had to be reproduced (restart) when the
    /// continuation ended.
    pub fn pending(&self) -> bool {
        self.restart && !self.skip.is_empty()
    }

    /// Applies the skip rule to a piece of continuation text; returns what
    /// goes to the client.
    fn take_text(&mut self, text: &str) -> Result<String, Diverged> {
        if self.skip.is_empty() {
            return Ok(text.to_owned());
        }
        if self.restart {
            if self.skip.starts_with(text) {
                self.skip.drain(..text.len());
                return Ok(String::new());
            }
            if let Some(rest) = text.strip_prefix(self.skip.as_str()) {
                self.skip.clear();
                return Ok(rest.to_owned());
            }
            return Err(Diverged);
        }
        // Prefill: drop the common start with the trimmed whitespace, once.
        let common = self
            .skip
            .char_indices()
            .zip(text.chars())
            .take_while(|((_, a), b)| a == b)
            .map(|((i, a), _)| i + a.len_utf8())
            .last()
            .unwrap_or(0);
        self.skip.clear();
        Ok(text[common..].to_owned())
    }

    fn anthropic(&mut self, e: &SseEvent, out: &mut Vec<u8>) -> Result<(), Diverged> {
        let name = e.event.as_deref().unwrap_or_default();
        let Ok(mut v) = serde_json::from_str::<Value>(&e.data) else {
            return Ok(()); // the relay dropped malformed events already
        };
        let index = v.get("index").and_then(Value::as_u64);
        match name {
            "message_start" => return Ok(()),
            "content_block_start" => {
                let i = index.unwrap_or(0);
                let kind = v
                    .pointer("/content_block/type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if matches!(kind.as_str(), "thinking" | "redacted_thinking") {
                    self.blocks.insert(i, None);
                    return Ok(());
                }
                if kind != "text" && self.pending() {
                    return Err(Diverged);
                }
                if kind == "text" && !self.joined {
                    self.joined = true;
                    if let Some(open) = self.open_text {
                        self.blocks.insert(i, Some(open));
                        return Ok(());
                    }
                }
                if kind == "text" && self.pending() {
                    // Restarted text lands in one new block; nothing shown yet.
                }
                let n = self.next_index;
                self.next_index += 1;
                self.blocks.insert(i, Some(n));
                v["index"] = Value::from(n);
            }
            "content_block_delta" => {
                let i = index.unwrap_or(0);
                let Some(Some(n)) = self.blocks.get(&i).copied() else {
                    return Ok(()); // hidden block (thinking)
                };
                match v.pointer("/delta/type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = v
                            .pointer("/delta/text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let keep = self.take_text(&text)?;
                        if keep.is_empty() {
                            return Ok(());
                        }
                        v["delta"]["text"] = Value::from(keep);
                    }
                    _ if self.pending() => return Err(Diverged),
                    _ => {}
                }
                v["index"] = Value::from(n);
            }
            "content_block_stop" => {
                let i = index.unwrap_or(0);
                let Some(Some(n)) = self.blocks.get(&i).copied() else {
                    return Ok(());
                };
                v["index"] = Value::from(n);
            }
            "message_delta" | "message_stop" if self.pending() => return Err(Diverged),
            _ => {}
        }
        write_event(out, Some(name), &v);
        Ok(())
    }

    fn openai(&mut self, e: &SseEvent, out: &mut Vec<u8>) -> Result<(), Diverged> {
        let data = e.data.trim();
        if data == "[DONE]" {
            if self.pending() {
                return Err(Diverged);
            }
            out.extend_from_slice(b"data: [DONE]\n\n");
            return Ok(());
        }
        let Ok(mut v) = serde_json::from_str::<Value>(data) else {
            return Ok(());
        };
        if let (Some((id, model, created)), Some(obj)) = (&self.identity, v.as_object_mut()) {
            for (k, value) in [("id", id), ("model", model), ("created", created)] {
                if obj.contains_key(k) && !value.is_null() {
                    obj.insert(k.into(), value.clone());
                }
            }
        }
        let mut keep_chunk =
            v.get("usage").is_some_and(|u| !u.is_null()) || v.get("error").is_some();
        if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
            for c in choices.iter_mut() {
                let finished = c.get("finish_reason").is_some_and(|r| !r.is_null());
                if let Some(delta) = c.get_mut("delta").and_then(Value::as_object_mut) {
                    delta.remove("role");
                    if delta.get("tool_calls").is_some_and(|t| !t.is_null()) && self.pending() {
                        return Err(Diverged);
                    }
                    if let Some(text) = delta.get("content").and_then(Value::as_str) {
                        let keep = self.take_text(text)?;
                        if keep.is_empty() {
                            delta.remove("content");
                        } else {
                            delta.insert("content".into(), Value::from(keep));
                        }
                    }
                    if delta.values().any(|x| !x.is_null()) {
                        keep_chunk = true;
                    }
                }
                if finished {
                    if self.pending() {
                        return Err(Diverged);
                    }
                    keep_chunk = true;
                }
            }
        }
        if keep_chunk {
            write_event(out, None, &v);
        }
        Ok(())
    }
}

fn write_event(out: &mut Vec<u8>, name: Option<&str>, v: &Value) {
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    crate::translate::bounded::write_value(out, v);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent_anthropic(events: &[&str]) -> Sent {
        let mut s = Sent::new(Dialect::Anthropic);
        for e in events {
            s.observe(e.as_bytes());
        }
        s
    }

    const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\"}}\n\n";

    fn text_start(i: u64) -> String {
        format!(
            "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n"
        )
    }

    fn delta(i: u64, t: &str) -> String {
        format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{i},\"delta\":{{\"type\":\"text_delta\",\"text\":\"{t}\"}}}}\n\n"
        )
    }

    #[test]
    fn a_prefill_continuation_joins_the_open_text_block() {
        let sent = sent_anthropic(&[START, &text_start(0), &delta(0, "Hello ")]);
        let mut s = Splicer::new(
            Dialect::Anthropic,
            &sent,
            &Strategy::Prefill {
                trimmed: " ".into(),
            },
        );
        let out = s
            .splice(format!("{START}{}{}", text_start(0), delta(0, " world")).as_bytes())
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("message_start"), "{text}");
        assert!(!text.contains("content_block_start"), "{text}");
        assert!(
            text.contains(r#""index":0"#) && text.contains(r#""text":"world""#),
            "{text}"
        );
    }

    #[test]
    fn a_restart_passes_on_only_what_extends_the_sent_text() {
        let sent = sent_anthropic(&[START, &text_start(0), &delta(0, "one two")]);
        let mut s = Splicer::new(Dialect::Anthropic, &sent, &Strategy::Restart);
        let mut all = String::new();
        for piece in [
            START.to_string(),
            text_start(0),
            delta(0, "one "),
            delta(0, "tw"),
            delta(0, "o three"),
        ] {
            all.push_str(&String::from_utf8(s.splice(piece.as_bytes()).unwrap()).unwrap());
        }
        assert_eq!(all.matches("event: ").count(), 1, "{all}");
        assert!(
            all.contains(r#""text":" three""#) && all.contains(r#""index":0"#),
            "{all}"
        );
        assert!(!s.pending());
    }

    #[test]
    fn a_restart_that_says_something_else_or_ends_early_diverges() {
        let sent = sent_anthropic(&[START, &text_start(0), &delta(0, "one two")]);
        let mut s = Splicer::new(Dialect::Anthropic, &sent, &Strategy::Restart);
        s.splice(text_start(0).as_bytes()).unwrap();
        assert_eq!(s.splice(delta(0, "uno").as_bytes()), Err(Diverged));
        let mut s = Splicer::new(Dialect::Anthropic, &sent, &Strategy::Restart);
        s.splice(format!("{}{}", text_start(0), delta(0, "one")).as_bytes())
            .unwrap();
        let stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert_eq!(s.splice(stop.as_bytes()), Err(Diverged));
    }

    #[test]
    fn thinking_in_a_continuation_is_not_shown_and_blocks_are_renumbered() {
        let sent = sent_anthropic(&[
            START,
            &text_start(0),
            &delta(0, "a"),
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        ]);
        let mut s = Splicer::new(
            Dialect::Anthropic,
            &sent,
            &Strategy::Prefill {
                trimmed: String::new(),
            },
        );
        let thinking = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n";
        let out = String::from_utf8(
            s.splice(format!("{thinking}{}{}", text_start(1), delta(1, "b")).as_bytes())
                .unwrap(),
        )
        .unwrap();
        assert!(!out.contains("thinking"), "{out}");
        assert!(out.contains(r#""index":1"#), "the next client block: {out}");
    }

    #[test]
    fn chat_chunks_keep_the_first_identity() {
        let mut sent = Sent::new(Dialect::OpenAI);
        sent.observe(b"data: {\"id\":\"c1\",\"model\":\"m1\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi \"}}]}\n\n");
        let mut s = Splicer::new(Dialect::OpenAI, &sent, &Strategy::Restart);
        let out = s
            .splice(b"data: {\"id\":\"c2\",\"model\":\"m2\",\"created\":2,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi you\"}}]}\n\ndata: [DONE]\n\n")
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""id":"c1""#) && text.contains(r#""content":"you""#),
            "{text}"
        );
        assert!(!text.contains("role"), "{text}");
    }
}
