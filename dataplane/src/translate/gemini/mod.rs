//! Google Gemini `generateContent` (the Gemini API and Gemini models on
//! Vertex AI) as an upstream, from every client format. Pure: JSON and SSE
//! events in, JSON and SSE bytes out.
//!
//! As for Bedrock ([`crate::translate::bedrock`]), the gateway's internal
//! format is Anthropic Messages: a client request becomes a Messages
//! request, then a Gemini request; a Gemini answer becomes an Anthropic
//! message or Anthropic SSE, and the existing client translations run on
//! that:
//!
//! | client | request | whole answer | stream |
//! |---|---|---|---|
//! | Messages | [`request::request_from_messages`] | [`response::response_to_messages`] | [`stream::GeminiToAnthropic`], relayed |
//! | Chat Completions | [`ids::extract`], `chat_to_messages` (the reasoning effort kept as a thinking budget), then the above | the above, then `response::messages_to_chat` | the above, then `stream_messages_to_chat` |
//! | Responses | [`ids::extract`], `responses::plan::request_to_messages` (likewise), then the above | the above, then `responses::plan::messages_response` | the above, then `responses::plan::messages_stream` |
//! | count_tokens | [`count_tokens_request`] (`countTokens`) | [`count_tokens_response`] | — |
//!
//! [`request`], [`response`] and [`client_stream`] are that table;
//! [`stream_translator`] chains the two stream stages into one.
//!
//! - [`ids`]: tool-call ids and the `thoughtSignature` inside them;
//! - [`schema`]: JSON Schema → Gemini's schema subset;
//! - [`errors`]: Google error bodies ↔ the gateway's error kinds.

pub mod errors;
pub mod ids;
pub mod request;
pub mod response;
pub mod schema;
pub mod stream;

#[cfg(test)]
mod golden_tests;

use serde_json::{Map, Value, json};

use crate::runtime::ApiFormat;
use crate::translate::bedrock::front_stream::Chained;
use crate::translate::names::ToolNames;
use crate::translate::{
    Session, StreamTranslator, TargetOptions, TranslateError, chat_to_messages, responses,
    stream_messages_to_chat,
};

pub use request::{GeminiOptions, needs_signatures};

/// A request ready for Gemini and what its answer needs.
#[derive(Clone, Debug, PartialEq)]
pub struct GeminiRequest {
    /// The `generateContent` body.
    pub body: Value,
    /// The client-side session (Chat and Responses clients: names, usage
    /// chunk, response context).
    pub session: Session,
    /// Tool names shortened for Gemini (restored in its answers).
    pub names: ToolNames,
}

/// The client's request as an Anthropic Messages request (and its session).
fn to_messages(
    client: ApiFormat,
    body: &Value,
    model: &str,
    opts: &GeminiOptions,
    now: u64,
) -> Result<(Value, Session), TranslateError> {
    let target = TargetOptions {
        default_max_tokens: opts.default_max_tokens,
        ..TargetOptions::default()
    };
    match client {
        ApiFormat::Messages | ApiFormat::CountTokens => Ok((
            body.clone(),
            Session {
                created: now,
                ..Session::default()
            },
        )),
        ApiFormat::ChatCompletions => {
            let t = chat_to_messages::translate(body, model, &target, now)?;
            Ok((t.body, t.session))
        }
        ApiFormat::Responses => {
            let t = responses::plan::request_to_messages(body, model, &target, now)?;
            Ok((t.body, t.session))
        }
    }
}

/// The client's reasoning effort as a thinking budget, when the Anthropic
/// translation dropped it: it turns thinking off in a tool loop whose
/// history carries no signed thinking (Anthropic refuses such a request),
/// which Gemini does not need.
fn keep_effort(client: ApiFormat, body: &Value, messages: &mut Value) {
    let effort = match client {
        ApiFormat::ChatCompletions => body.get("reasoning_effort"),
        ApiFormat::Responses => body.pointer("/reasoning/effort"),
        ApiFormat::Messages | ApiFormat::CountTokens => None,
    };
    let budget = effort
        .and_then(Value::as_str)
        .and_then(responses::to_messages::thinking_budget);
    if let (Some(budget), Some(obj)) = (budget, messages.as_object_mut())
        && !obj.contains_key("thinking")
    {
        obj.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
}

/// The `generateContent` request for a `client`-format body for `model`.
pub fn request(
    client: ApiFormat,
    body: &Value,
    model: &str,
    opts: &GeminiOptions,
    now: u64,
) -> Result<GeminiRequest, TranslateError> {
    let mut body = body.clone();
    let sigs = match client {
        ApiFormat::ChatCompletions | ApiFormat::Responses => ids::extract(&mut body),
        ApiFormat::Messages | ApiFormat::CountTokens => ids::Signatures::default(),
    };
    let (mut messages, session) = to_messages(client, &body, model, opts, now)?;
    keep_effort(client, &body, &mut messages);
    let (body, names) = request::request_from_messages(&messages, &sigs, opts)?;
    Ok(GeminiRequest {
        body,
        session,
        names,
    })
}

/// A whole Gemini answer for a `client`-format request for `model`.
pub fn response(
    client: ApiFormat,
    upstream: &Value,
    req: &GeminiRequest,
    model: &str,
) -> Result<Value, TranslateError> {
    let mut message = response::response_to_messages(upstream, &req.names, model)?;
    match client {
        ApiFormat::Messages | ApiFormat::CountTokens => Ok(message),
        ApiFormat::ChatCompletions => {
            response::add_reasoning_usage(&mut message, upstream);
            crate::translate::response::messages_to_chat(&message, &req.session)
        }
        ApiFormat::Responses => {
            response::add_reasoning_usage(&mut message, upstream);
            responses::plan::messages_response(&message, &req.session)
        }
    }
}

/// The client translation of the Anthropic SSE that
/// [`stream::GeminiToAnthropic`] produces; `None` relays it unchanged
/// (Messages clients).
pub fn client_stream(client: ApiFormat, session: Session) -> Option<Box<dyn StreamTranslator>> {
    match client {
        ApiFormat::Messages | ApiFormat::CountTokens => None,
        ApiFormat::ChatCompletions => Some(stream_messages_to_chat::boxed(session)),
        ApiFormat::Responses => Some(responses::plan::messages_stream(session)),
    }
}

/// One translator from a Gemini SSE answer straight to the client's events
/// ([`stream::GeminiToAnthropic`] chained with [`client_stream`]), for a
/// relay reading the Gemini stream itself.
pub fn stream_translator(
    client: ApiFormat,
    req: &GeminiRequest,
    model: &str,
) -> Box<dyn StreamTranslator> {
    let gemini = stream::GeminiToAnthropic::new(model, req.names.clone());
    match client_stream(client, req.session.clone()) {
        None => Box::new(gemini),
        Some(second) => Box::new(Chained::new(
            Box::new(gemini.with_reasoning_usage()),
            second,
        )),
    }
}

/// Where a `countTokens` request goes: the Gemini API wraps the request in
/// `generateContentRequest` (with `model: models/{id}`); Vertex takes the
/// fields at the top level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountTokensShape {
    /// `{"generateContentRequest": {"model", "contents", …}}`.
    GeminiApi,
    /// `{"contents", "systemInstruction", "tools"}`.
    Vertex,
}

/// The `countTokens` body for an Anthropic `count_tokens` request.
pub fn count_tokens_request(
    body: &Value,
    model: &str,
    shape: CountTokensShape,
) -> Result<Value, TranslateError> {
    let (full, _) = request::request_from_messages(
        body,
        &ids::Signatures::default(),
        &GeminiOptions::default(),
    )?;
    let mut inner = Map::new();
    for key in ["contents", "systemInstruction", "tools"] {
        if let Some(v) = full.get(key) {
            inner.insert(key.into(), v.clone());
        }
    }
    Ok(match shape {
        CountTokensShape::Vertex => Value::Object(inner),
        CountTokensShape::GeminiApi => {
            let id = model.strip_prefix("models/").unwrap_or(model);
            inner.insert("model".into(), json!(format!("models/{id}")));
            json!({"generateContentRequest": inner})
        }
    })
}

/// A `countTokens` answer (`{"totalTokens"}`) as Anthropic's `{"input_tokens"}`.
pub fn count_tokens_response(upstream: &Value) -> Result<Value, TranslateError> {
    let total = upstream
        .get("totalTokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            TranslateError::Upstream("the countTokens answer has no totalTokens".into())
        })?;
    Ok(json!({"input_tokens": total}))
}
