//! The `Mock` provider speaking Bedrock: the answer an upstream Bedrock
//! Runtime would give to a Bedrock request body, in its exact framing, so a
//! Mock backend can stand in for Bedrock offline and the gateway's Bedrock
//! decoding runs on real bytes (issue 14 §1: the Mock emulates every
//! provider's wire format).
//!
//! It is the Anthropic mock ([`crate::wire::mock::respond`]) behind the front-door
//! encoders: an InvokeModel body is already an Anthropic request; a Converse
//! body is read with [`crate::translate::bedrock::front_request`]. The
//! Anthropic answer becomes a Converse answer
//! ([`crate::translate::bedrock::converse_response::response_from_messages`]),
//! or event-stream messages (`chunk`s for InvokeModel, typed events for
//! Converse) through the front-door stream translators. A Mock backend
//! with `mock.emulate: Bedrock` answers with it
//! (`Provider::emulate` of [`super::Bedrock`]).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::translate::StreamTranslator;
use crate::translate::TranslateError;
use crate::translate::bedrock::errors::front_error;
use crate::translate::bedrock::front_stream::{MessagesToConverseFrames, MessagesToInvokeFrames};
use crate::translate::bedrock::{BedrockApi, converse_response, front_request, invoke};
use crate::upstream::UpstreamBody;
use crate::wire::Dialect;
use crate::wire::mock::{MockReply, MockResponse, respond};
use crate::wire::sse::SseParser;

/// A Bedrock answer, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BedrockMockResponse {
    /// `application/json`.
    Json(Bytes),
    /// `application/vnd.amazon.eventstream`, one message per element.
    EventStream(Vec<Bytes>),
}

/// Answers a Bedrock request body for `model` on `api`, streaming when
/// `stream` (the operation in the path). A body that is not a valid request
/// is an error (Bedrock's 400 `ValidationException`).
pub fn respond_bedrock(
    api: BedrockApi,
    body: &Value,
    model: &str,
    stream: bool,
    settings: &MockReply,
) -> Result<BedrockMockResponse, TranslateError> {
    let (request, _) = match api {
        BedrockApi::InvokeModel => invoke::request_to_messages(body, model, stream)?,
        BedrockApi::Converse => front_request::request_to_messages(body, model, stream)?,
    };
    match respond(Dialect::Anthropic, &request, settings) {
        MockResponse::Json(bytes) => match api {
            BedrockApi::InvokeModel => Ok(BedrockMockResponse::Json(bytes)),
            BedrockApi::Converse => {
                let message: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| TranslateError::Upstream(e.to_string()))?;
                let answer = converse_response::response_from_messages(&message)?;
                Ok(BedrockMockResponse::Json(Bytes::from(answer.to_string())))
            }
        },
        MockResponse::Sse(events) => {
            let mut t: Box<dyn StreamTranslator> = match api {
                BedrockApi::InvokeModel => Box::new(MessagesToInvokeFrames::new()),
                BedrockApi::Converse => Box::new(MessagesToConverseFrames::new()),
            };
            let mut parser = SseParser::default();
            let mut out = Vec::new();
            for raw in events {
                for event in parser.feed(&raw).into_iter().flatten() {
                    let mut frames = Vec::new();
                    t.event(&event, &mut frames);
                    if !frames.is_empty() {
                        out.push(Bytes::from(frames));
                    }
                }
            }
            Ok(BedrockMockResponse::EventStream(out))
        }
    }
}

/// A Bedrock error answer for `status`: the exception Bedrock names for it
/// in `x-amzn-ErrorType` and `{"message": …}`.
pub fn error_response(status: StatusCode, message: &str) -> Response<UpstreamBody> {
    let kind = crate::providers::mock::kind_of_status(status);
    let (_, name, body) = front_error(kind, message);
    let mut resp = crate::providers::mock::json_response(status, Bytes::from(body));
    resp.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(name));
    resp
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::translate::bedrock::converse_stream::ConverseToSse;
    use crate::translate::bedrock::invoke::ChunksToSse;
    use crate::translate::names::ToolNames;
    use crate::wire::eventstream::{Decoder, FrameTranslator, Kind};

    fn decode(frames: &[Bytes], t: &mut dyn FrameTranslator) -> (Vec<String>, String) {
        let mut d = Decoder::default();
        let mut kinds = Vec::new();
        let mut sse = Vec::new();
        for f in frames {
            d.feed(f);
            while let Some(m) = d.next_message().unwrap() {
                if let Kind::Event(e) = m.kind() {
                    kinds.push(e.to_string());
                }
                t.message(&m, &mut sse);
            }
        }
        (kinds, String::from_utf8(sse).unwrap())
    }

    #[test]
    fn converse_answers_and_streams() {
        let body = json!({"messages": [{"role": "user", "content": [{"text": "hello there"}]}]});
        let reply = MockReply::default();
        let BedrockMockResponse::Json(json) = respond_bedrock(
            BedrockApi::Converse,
            &body,
            "amazon.nova-pro-v1:0",
            false,
            &reply,
        )
        .unwrap() else {
            panic!("not JSON")
        };
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            v["output"]["message"]["content"][0]["text"],
            "echo: hello there"
        );
        assert_eq!(v["stopReason"], "end_turn");
        assert!(v["usage"]["inputTokens"].as_u64().unwrap() > 0);

        let BedrockMockResponse::EventStream(frames) =
            respond_bedrock(BedrockApi::Converse, &body, "m", true, &reply).unwrap()
        else {
            panic!("not a stream")
        };
        let mut t = ConverseToSse::new("msg_1", "m", ToolNames::default());
        let (kinds, sse) = decode(&frames, &mut t);
        assert_eq!(kinds.first().map(String::as_str), Some("messageStart"));
        assert_eq!(&kinds[kinds.len() - 2..], ["messageStop", "metadata"]);
        assert!(
            sse.contains("echo: ")
                && sse.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{sse}"
        );
    }

    #[test]
    fn invoke_model_answers_and_streams_chunks() {
        let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,
            "messages": [{"role": "user", "content": "What is the weather?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
        let reply = MockReply::default();
        let BedrockMockResponse::Json(json) = respond_bedrock(
            BedrockApi::InvokeModel,
            &body,
            "anthropic.claude",
            false,
            &reply,
        )
        .unwrap() else {
            panic!("not JSON")
        };
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["content"][0]["type"], "tool_use");
        assert_eq!(v["stop_reason"], "tool_use");

        let BedrockMockResponse::EventStream(frames) = respond_bedrock(
            BedrockApi::InvokeModel,
            &body,
            "anthropic.claude",
            true,
            &reply,
        )
        .unwrap() else {
            panic!("not a stream")
        };
        let (kinds, sse) = decode(&frames, &mut ChunksToSse::new());
        assert!(kinds.iter().all(|k| k == "chunk"));
        assert!(sse.starts_with("event: message_start\n"), "{sse}");
        assert!(sse.contains("\"name\":\"get_weather\""), "{sse}");
        assert!(
            sse.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{sse}"
        );
    }

    #[test]
    fn invalid_bodies_are_refused() {
        let reply = MockReply::default();
        assert!(
            respond_bedrock(
                BedrockApi::Converse,
                &json!({"messages": "x"}),
                "m",
                false,
                &reply
            )
            .is_err()
        );
        assert!(respond_bedrock(BedrockApi::InvokeModel, &json!([]), "m", false, &reply).is_err());
    }
}
