//! The Responses translations in the shape of [`crate::translate::plan`]'s
//! [`Translator`](crate::translate::Translator) table: request, whole-answer
//! and streaming functions for Responses clients on Chat Completions and
//! Anthropic Messages backends. The response context travels in
//! [`Session::responses`].

use serde_json::{Value, json};

use super::{
    ChatStreamTranslator, MessagesOptions, MessagesStreamTranslator, ResponseContext,
    ResponsesError, ResponsesEvent, Translated, from_chat_response, from_messages_response,
    to_chat, to_messages,
};
use crate::translate::{
    Session, StreamTranslator, TargetOptions, TranslateError, TranslatedBody, TranslatedRequest,
};
use crate::wire::ErrorKind;
use crate::wire::sse::SseEvent;

impl From<ResponsesError> for TranslateError {
    fn from(e: ResponsesError) -> Self {
        TranslateError::Unsupported {
            field: e.param,
            target: "non-OpenAI",
            reason: e.message,
        }
    }
}

fn session(t: Translated, model: &str, now: u64) -> TranslatedRequest {
    let mut body = t.body;
    body["model"] = json!(model);
    TranslatedRequest {
        body,
        session: Session {
            created: now,
            responses: Some(t.context),
            ..Session::default()
        },
    }
}

fn json_session(body: bytes::Bytes, context: ResponseContext, now: u64) -> TranslatedBody {
    TranslatedBody {
        body,
        session: Session {
            created: now,
            responses: Some(context),
            ..Session::default()
        },
    }
}

/// Responses request body → Chat Completions body for `model`, in bounded
/// memory (`input` item by item, see [`crate::translate::bounded`]).
pub fn request_to_chat_json(
    json: &crate::body::RequestJson,
    model: &str,
    opts: &TargetOptions,
    now: u64,
) -> Result<TranslatedBody, TranslateError> {
    let (body, context) = super::to_chat::to_chat_json(json, Some(model), opts.legacy_max_tokens)?;
    Ok(json_session(body, context, now))
}

/// Responses request body → Anthropic Messages body for `model`, in bounded
/// memory. `max_tokens` defaults as in [`request_to_messages`].
pub fn request_to_messages_json(
    json: &crate::body::RequestJson,
    model: &str,
    opts: &TargetOptions,
    now: u64,
) -> Result<TranslatedBody, TranslateError> {
    let messages_opts = MessagesOptions {
        default_max_tokens: opts
            .default_max_tokens
            .max(MessagesOptions::default().default_max_tokens),
    };
    let (body, context) = super::to_messages::to_messages_json(json, Some(model), &messages_opts)?;
    Ok(json_session(body, context, now))
}

/// Responses request → Chat Completions request for `model`.
pub fn request_to_chat(
    request: &Value,
    model: &str,
    opts: &TargetOptions,
    now: u64,
) -> Result<TranslatedRequest, TranslateError> {
    let mut t = to_chat(request)?;
    if !opts.legacy_max_tokens
        && let Some(obj) = t.body.as_object_mut()
        && let Some(n) = obj.remove("max_tokens")
    {
        obj.insert("max_completion_tokens".into(), n);
    }
    Ok(session(t, model, now))
}

/// Responses request → Anthropic Messages request for `model`. `max_tokens`
/// defaults to the larger of the backend default and
/// [`MessagesOptions::default`] (coding agents write long tool calls).
pub fn request_to_messages(
    request: &Value,
    model: &str,
    opts: &TargetOptions,
    now: u64,
) -> Result<TranslatedRequest, TranslateError> {
    let messages_opts = MessagesOptions {
        default_max_tokens: opts
            .default_max_tokens
            .max(MessagesOptions::default().default_max_tokens),
    };
    Ok(session(to_messages(request, &messages_opts)?, model, now))
}

fn context(s: &Session) -> Result<&ResponseContext, TranslateError> {
    s.responses
        .as_ref()
        .ok_or_else(|| TranslateError::Upstream("no Responses context for this answer".into()))
}

/// Chat Completions answer → Responses object.
pub fn chat_response(body: &Value, s: &Session) -> Result<Value, TranslateError> {
    Ok(from_chat_response(body, context(s)?, s.created))
}

/// [`chat_response`] from and to JSON text.
pub fn chat_response_json(body: &[u8], s: &Session) -> Result<Vec<u8>, TranslateError> {
    Ok(chat_response(&parse_answer(body)?, s)?
        .to_string()
        .into_bytes())
}

/// Anthropic Messages answer → Responses object.
pub fn messages_response(body: &Value, s: &Session) -> Result<Value, TranslateError> {
    Ok(from_messages_response(body, context(s)?, s.created))
}

/// [`messages_response`] from and to JSON text.
pub fn messages_response_json(body: &[u8], s: &Session) -> Result<Vec<u8>, TranslateError> {
    Ok(messages_response(&parse_answer(body)?, s)?
        .to_string()
        .into_bytes())
}

fn parse_answer(body: &[u8]) -> Result<Value, TranslateError> {
    serde_json::from_slice(body).map_err(|e| TranslateError::Upstream(e.to_string()))
}

fn write(events: Vec<ResponsesEvent>, out: &mut Vec<u8>) {
    for e in events {
        out.extend_from_slice(&e.to_sse());
    }
}

fn error_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Timeout => "timeout",
        _ => "upstream_error",
    }
}

struct FromChat(ChatStreamTranslator);

impl StreamTranslator for FromChat {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        write(self.0.on_event(event), out);
    }

    fn error_event(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) -> bool {
        write(self.0.on_error(error_code(kind), message), out);
        true
    }

    fn finished(&self) -> bool {
        self.0.finished()
    }
}

struct FromMessages(MessagesStreamTranslator);

impl StreamTranslator for FromMessages {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        write(self.0.on_event(event), out);
    }

    fn error_event(&mut self, kind: ErrorKind, message: &str, out: &mut Vec<u8>) -> bool {
        write(self.0.on_error(error_code(kind), message), out);
        true
    }

    fn finished(&self) -> bool {
        self.0.finished()
    }
}

/// The Chat Completions stream → Responses events translator.
pub fn chat_stream(s: Session) -> Box<dyn StreamTranslator> {
    let created = s.created;
    Box::new(FromChat(ChatStreamTranslator::new(
        s.responses.unwrap_or_default(),
        created,
    )))
}

/// The Anthropic Messages stream → Responses events translator.
pub fn messages_stream(s: Session) -> Box<dyn StreamTranslator> {
    let created = s.created;
    Box::new(FromMessages(MessagesStreamTranslator::new(
        s.responses.unwrap_or_default(),
        created,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ApiFormat;
    use crate::translate::{Plan, UpstreamFormat, plan};

    #[test]
    fn the_plan_table_routes_responses_clients() {
        for upstream in [UpstreamFormat::ChatCompletions, UpstreamFormat::Messages] {
            let Plan::Translate(t) = plan(ApiFormat::Responses, upstream) else {
                panic!("Responses on {upstream:?} must translate");
            };
            let req = json!({"model": "client-name", "input": "hi", "max_output_tokens": 100, "stream": true});
            let opts = TargetOptions {
                legacy_max_tokens: false,
                default_max_tokens: 4096,
            };
            let json = crate::body::RequestJson::from_value(&req).unwrap();
            let tr = (t.request)(&json, "provider-name", &opts, 7)
                .unwrap()
                .into_tree()
                .unwrap();
            assert_eq!(tr.body["model"], "provider-name");
            assert_eq!(tr.session.responses.as_ref().unwrap().model, "client-name");
            let mut translator = (t.stream)(tr.session.clone());
            let mut out = Vec::new();
            assert!(translator.error_event(ErrorKind::Timeout, "stalled", &mut out));
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("event: response.failed\n") && text.contains("\"code\":\"timeout\""),
                "{text}"
            );
        }
        let chat = request_to_chat(
            &json!({"input": "x", "max_output_tokens": 5}),
            "m",
            &TargetOptions::default(),
            0,
        )
        .unwrap();
        assert_eq!(chat.body["max_completion_tokens"], 5);
        let legacy = TargetOptions {
            legacy_max_tokens: true,
            default_max_tokens: 0,
        };
        assert_eq!(
            request_to_chat(
                &json!({"input": "x", "max_output_tokens": 5}),
                "m",
                &legacy,
                0
            )
            .unwrap()
            .body["max_tokens"],
            5
        );
        let messages =
            request_to_messages(&json!({"input": "x"}), "m", &TargetOptions::default(), 0).unwrap();
        assert_eq!(messages.body["max_tokens"], 8192);
    }

    #[test]
    fn untranslatable_requests_name_the_field() {
        let e = request_to_messages(
            &json!({"input": "x", "previous_response_id": "r"}),
            "m",
            &TargetOptions::default(),
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("previous_response_id"), "{e}");
    }
}
