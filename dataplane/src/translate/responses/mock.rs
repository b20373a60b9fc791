//! The `Mock` provider answering the Responses API: the request goes
//! through the Chat Completions translation, the built-in Chat mock answers
//! it ([`crate::wire::mock`]), and the answer comes back through the same
//! translations a real OpenAI-compatible backend's answer takes. So the
//! mock's Responses answers follow the Chat mock's rules (echo, tool-call
//! rule, deterministic ids, estimated tokens) and exercise the translators.

use bytes::Bytes;
use serde_json::Value;

use super::{ChatStreamTranslator, ResponsesError, from_chat_response, to_chat};
use crate::wire::Dialect;
use crate::wire::mock::{MockReply, MockResponse, respond};
use crate::wire::sse::SseParser;
use crate::wire::usage::Usage;

/// A mock Responses answer and the usage it reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockAnswer {
    /// The answer, ready to send.
    pub response: MockResponse,
    /// The usage of the (Chat) mock answer.
    pub usage: Usage,
}

/// Answers a Responses request (`model` already set to the provider
/// model) like a mock backend would.
pub fn respond_responses(
    request: &Value,
    settings: &MockReply,
    created_at: u64,
) -> Result<MockAnswer, ResponsesError> {
    let translated = to_chat(request)?;
    let mut ctx = translated.context;
    if let Some(m) = request.get("model").and_then(Value::as_str) {
        ctx.model = m.to_owned();
    }
    match respond(Dialect::OpenAI, &translated.body, settings) {
        MockResponse::Json(bytes) => {
            let chat: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let usage = chat
                .get("usage")
                .map(Usage::from_openai)
                .unwrap_or_default();
            let body = from_chat_response(&chat, &ctx, created_at);
            Ok(MockAnswer {
                response: MockResponse::Json(Bytes::from(body.to_string())),
                usage,
            })
        }
        MockResponse::Sse(events) => {
            let mut t = ChatStreamTranslator::new(ctx, created_at);
            let mut parser = SseParser::default();
            let mut out = Vec::new();
            for raw in events {
                for ev in parser.feed(&raw).into_iter().flatten() {
                    out.extend(t.on_event(&ev).iter().map(|e| e.to_sse()));
                }
            }
            out.extend(t.on_end().iter().map(|e| e.to_sse()));
            Ok(MockAnswer {
                response: MockResponse::Sse(out),
                usage: t.usage(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn whole_answer_echoes_and_counts() {
        let a = respond_responses(
            &json!({"model": "mock-1", "input": "hello there"}),
            &MockReply::default(),
            5,
        )
        .unwrap();
        let MockResponse::Json(bytes) = a.response else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "completed");
        assert_eq!(v["output"][0]["content"][0]["text"], "echo: hello there");
        assert_eq!(v["usage"]["input_tokens"], a.usage.input_tokens);
        assert!(a.usage.output_tokens > 0);
    }

    #[test]
    fn streamed_tool_call_restores_the_namespace() {
        let a = respond_responses(
            &json!({"model": "mock-1", "stream": true, "input": "weather?",
                "tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "get_weather"}]}]}),
            &MockReply::default(),
            5,
        )
        .unwrap();
        let MockResponse::Sse(events) = a.response else {
            panic!()
        };
        let text: String = events
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect();
        assert!(text.starts_with("event: response.created\n"), "{text}");
        assert!(text.contains("\"namespace\":\"ns\""), "{text}");
        assert!(text.contains("\"name\":\"get_weather\""), "{text}");
        assert!(text.contains("event: response.completed\n"), "{text}");
        assert!(a.usage.input_tokens > 0);
    }
}
