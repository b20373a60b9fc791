//! Streaming: Gemini `streamGenerateContent?alt=sse` events → Anthropic SSE
//! (`protocols.md` §5.4), event by event. Each Gemini event is a whole
//! `GenerateContentResponse` carrying the next parts; there are no event
//! names and no terminal `[DONE]`: the event with a `finishReason` (which
//! also carries the final, cumulative `usageMetadata`) ends the answer.
//!
//! | Gemini event | Anthropic events |
//! |---|---|
//! | the first one | `message_start` (`msg_<responseId>`, the model; input usage when given) |
//! | part `{text, thought: true}` | (`content_block_start` thinking) `thinking_delta` |
//! | part `{text}` | (`content_block_start` text) `text_delta` |
//! | part `{functionCall}` (always complete) | `content_block_start` tool_use (id of [`super::ids`]), one `input_json_delta` with the whole arguments, `content_block_stop` |
//! | `finishReason` | `content_block_stop`, `message_delta` (stop reason of [`super::response::stop_reason`], usage; with [`GeminiToAnthropic::with_reasoning_usage`] also the thinking tokens), `message_stop` |
//! | `promptFeedback.blockReason`, no candidate | `message_delta` (`refusal`), `message_stop` |
//! | `{"error": {…}}` | `event: error` (kind of the Google status), nothing after it |
//! | data that is not JSON | `event: error` (`api_error`), nothing after it |
//!
//! A stream that ends without a `finishReason` gets no `message_stop`: the
//! relay reports it as cut ([`StreamTranslator::error_event`] writes the
//! Anthropic `error` event).

use serde_json::{Value, json};

use super::errors::kind_of;
use super::response::{message_id, stop_reason, tool_use, usage_from_gemini};
use crate::translate::StreamTranslator;
use crate::translate::bedrock::errors::anthropic_error_event;
use crate::translate::mapping::anthropic_usage;
use crate::translate::names::ToolNames;
use crate::wire::ErrorKind;
use crate::wire::sse::SseEvent;
use crate::wire::usage::ANTHROPIC_REASONING_TOKENS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
}

/// The Gemini → Anthropic SSE translator of one answer.
#[derive(Debug)]
pub struct GeminiToAnthropic {
    model: String,
    names: ToolNames,
    started: bool,
    finished: bool,
    open: Open,
    /// Index of the next content block.
    next_index: usize,
    /// Function calls seen (also the index of the next one).
    calls: usize,
    usage: Value,
    /// Put Gemini's `thoughtsTokenCount` in the usage as the gateway's
    /// [`ANTHROPIC_REASONING_TOKENS`] (for OpenAI-format clients).
    reasoning_usage: bool,
}

fn sse(out: &mut Vec<u8>, event: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

impl GeminiToAnthropic {
    /// A translator for one stream for `model`; `names` restores shortened
    /// tool names.
    pub fn new(model: impl Into<String>, names: ToolNames) -> Self {
        Self {
            model: model.into(),
            names,
            started: false,
            finished: false,
            open: Open::None,
            next_index: 0,
            calls: 0,
            usage: Value::Null,
            reasoning_usage: false,
        }
    }

    /// Also reports the thinking tokens in the final usage, as the
    /// gateway's [`ANTHROPIC_REASONING_TOKENS`], which the OpenAI-format
    /// client translations read (`reasoning_tokens`); an Anthropic client
    /// gets Anthropic's usage fields only.
    pub fn with_reasoning_usage(mut self) -> Self {
        self.reasoning_usage = true;
        self
    }

    /// Boxed, for the relay.
    pub fn boxed(model: impl Into<String>, names: ToolNames) -> Box<dyn StreamTranslator> {
        Box::new(Self::new(model, names))
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let usage = usage_from_gemini(chunk.get("usageMetadata").unwrap_or(&Value::Null));
        let mut start_usage = anthropic_usage(&usage);
        start_usage["output_tokens"] = json!(0);
        sse(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(chunk), "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null,
                "stop_sequence": null, "usage": start_usage
            }}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open != Open::None {
            sse(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next_index - 1}),
            );
            self.open = Open::None;
        }
    }

    fn open(&mut self, kind: Open, out: &mut Vec<u8>) {
        if self.open == kind {
            return;
        }
        self.close(out);
        let block = match kind {
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            _ => json!({"type": "text", "text": ""}),
        };
        sse(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next_index, "content_block": block}),
        );
        self.next_index += 1;
        self.open = kind;
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
        anthropic_error_event(kind, message, out);
        self.finished = true;
    }

    fn part(&mut self, part: &Value, response_id: &str, out: &mut Vec<u8>) {
        if part.get("functionCall").is_some() {
            self.close(out);
            let block = tool_use(part, response_id, self.calls, &self.names);
            self.calls += 1;
            let index = self.next_index;
            self.next_index += 1;
            let input = block["input"].to_string();
            let mut start = block;
            start["input"] = json!({});
            sse(
                out,
                "content_block_start",
                &json!({"type": "content_block_start", "index": index, "content_block": start}),
            );
            sse(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": input}}),
            );
            sse(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if text.is_empty() {
                return;
            }
            let (kind, delta) = if part.get("thought").and_then(Value::as_bool) == Some(true) {
                (
                    Open::Thinking,
                    json!({"type": "thinking_delta", "thinking": text}),
                )
            } else {
                (Open::Text, json!({"type": "text_delta", "text": text}))
            };
            self.open(kind, out);
            sse(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": self.next_index - 1, "delta": delta}),
            );
        }
    }

    fn finish(&mut self, stop: &str, out: &mut Vec<u8>) {
        self.close(out);
        let usage = usage_from_gemini(&self.usage);
        let mut delta_usage = anthropic_usage(&usage);
        if self.reasoning_usage && usage.reasoning_tokens > 0 {
            delta_usage[ANTHROPIC_REASONING_TOKENS] = json!(usage.reasoning_tokens);
        }
        sse(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": delta_usage}),
        );
        sse(out, "message_stop", &json!({"type": "message_stop"}));
        self.finished = true;
    }
}

impl StreamTranslator for GeminiToAnthropic {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(_) => {
                self.fail(
                    ErrorKind::Api,
                    "the Gemini stream sent an event that is not JSON",
                    out,
                );
                return;
            }
        };
        if let Some(e) = chunk.get("error") {
            let status = e.get("status").and_then(Value::as_str).unwrap_or_default();
            let code = e.get("code").and_then(Value::as_u64).unwrap_or(0);
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("Gemini error");
            self.fail(
                kind_of(status, u16::try_from(code).unwrap_or(0)),
                message,
                out,
            );
            return;
        }
        self.start(&chunk, out);
        if let Some(u) = chunk.get("usageMetadata") {
            self.usage = u.clone();
        }
        let response_id = chunk
            .get("responseId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let candidate = chunk
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        let Some(candidate) = candidate else {
            if chunk.pointer("/promptFeedback/blockReason").is_some() {
                self.finish("refusal", out);
            }
            return;
        };
        if let Some(parts) = candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
        {
            for part in parts {
                self.part(part, &response_id, out);
            }
        }
        if let Some(finish) = candidate.get("finishReason").and_then(Value::as_str) {
            let stop = stop_reason(Some(finish), self.calls > 0);
            self.finish(stop, out);
        }
    }

    fn error_event(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) -> bool {
        self.fail(kind, message, out);
        true
    }

    fn finished(&self) -> bool {
        self.finished
    }
}
