//! What the client has received of a stream, read from the client-format
//! events as they go out: the answer text so far, whether a tool call or
//! the end was already sent, and what a continuation must fit into (the
//! open content block, the chunk id).

use serde_json::Value;

use crate::wire::Dialect;
use crate::wire::sse::{DEFAULT_MAX_EVENT_BYTES, SseEvent, SseParser};

/// The kind of an Anthropic content block the client has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// A text block.
    Text,
    /// Anything else (thinking, tool use, server tools).
    Other,
}

/// The client's view of one stream.
#[derive(Debug)]
pub struct Sent {
    dialect: Dialect,
    parser: SseParser,
    /// The answer text, all text blocks or content deltas in order.
    pub text: String,
    /// A tool call was sent (its arguments may be incomplete).
    pub tool_use: bool,
    /// The stream's end (stop reason, terminal event) was sent.
    pub finished: bool,
    /// Anthropic: the block open at the client, by index.
    pub open: Option<(u64, Block)>,
    /// Anthropic: the next free block index.
    pub next_index: u64,
    /// OpenAI: `id`, `model` and `created` of the chunks sent.
    pub chunk_identity: Option<(Value, Value, Value)>,
}

impl Sent {
    /// Nothing sent yet, in `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            parser: SseParser::new(DEFAULT_MAX_EVENT_BYTES),
            text: String::new(),
            tool_use: false,
            finished: false,
            open: None,
            next_index: 0,
            chunk_identity: None,
        }
    }

    /// Whether a continuation can still extend what was sent.
    pub fn continuable(&self) -> bool {
        !self.tool_use && !self.finished
    }

    /// Reads client bytes about to go out.
    pub fn observe(&mut self, bytes: &[u8]) {
        for event in self.parser.feed(bytes).into_iter().flatten() {
            self.event(&event);
        }
    }

    fn event(&mut self, e: &SseEvent) {
        match self.dialect {
            Dialect::Anthropic => self.anthropic(e),
            Dialect::OpenAI => self.openai(e),
        }
    }

    fn anthropic(&mut self, e: &SseEvent) {
        let name = e.event.as_deref().unwrap_or_default();
        if !matches!(
            name,
            "content_block_start"
                | "content_block_delta"
                | "content_block_stop"
                | "message_delta"
                | "message_stop"
        ) {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            return;
        };
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match name {
            "content_block_start" => {
                let kind = v.pointer("/content_block/type").and_then(Value::as_str);
                let block = if kind == Some("text") {
                    if let Some(t) = v.pointer("/content_block/text").and_then(Value::as_str) {
                        self.text.push_str(t);
                    }
                    Block::Text
                } else {
                    if matches!(kind, Some("tool_use" | "server_tool_use" | "mcp_tool_use")) {
                        self.tool_use = true;
                    }
                    Block::Other
                };
                self.open = Some((index, block));
                self.next_index = self.next_index.max(index + 1);
            }
            "content_block_delta" => match v.pointer("/delta/type").and_then(Value::as_str) {
                Some("text_delta") => {
                    if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
                        self.text.push_str(t);
                    }
                }
                Some("input_json_delta") => self.tool_use = true,
                _ => {}
            },
            "content_block_stop" => self.open = None,
            "message_delta" => {
                if v.pointer("/delta/stop_reason")
                    .is_some_and(|r| !r.is_null())
                {
                    self.finished = true;
                }
            }
            _ => self.finished = true, // message_stop
        }
    }

    fn openai(&mut self, e: &SseEvent) {
        let data = e.data.trim();
        if data == "[DONE]" {
            self.finished = true;
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if self.chunk_identity.is_none() && v.get("id").is_some() {
            self.chunk_identity = Some((
                v.get("id").cloned().unwrap_or(Value::Null),
                v.get("model").cloned().unwrap_or(Value::Null),
                v.get("created").cloned().unwrap_or(Value::Null),
            ));
        }
        for c in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = c.pointer("/delta/content").and_then(Value::as_str) {
                self.text.push_str(t);
            }
            if c.pointer("/delta/tool_calls").is_some_and(|t| !t.is_null())
                || c.pointer("/delta/function_call")
                    .is_some_and(|t| !t.is_null())
            {
                self.tool_use = true;
            }
            if c.get("finish_reason").is_some_and(|r| !r.is_null()) {
                self.finished = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_an_anthropic_stream() {
        let mut s = Sent::new(Dialect::Anthropic);
        s.observe(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n");
        s.observe(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
        s.observe(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
        s.observe(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n");
        assert_eq!(s.text, "Hello");
        assert_eq!(s.open, Some((1, Block::Text)));
        assert_eq!(s.next_index, 2);
        assert!(s.continuable());
        s.observe(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{}}}\n\n");
        assert!(!s.continuable());
    }

    #[test]
    fn follows_a_chat_stream() {
        let mut s = Sent::new(Dialect::OpenAI);
        s.observe(b"data: {\"id\":\"c1\",\"model\":\"m\",\"created\":5,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n");
        s.observe(b"data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi there\"}}]}\n\n");
        assert_eq!(s.text, "Hi there");
        assert_eq!(
            s.chunk_identity,
            Some((Value::from("c1"), Value::from("m"), Value::from(5)))
        );
        assert!(s.continuable());
        s.observe(b"data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        assert!(!s.continuable());
    }
}
