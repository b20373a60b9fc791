//! Amazon Bedrock Runtime, both ways: as an upstream (InvokeModel for Claude
//! models, Converse for the others) and as a front door for Bedrock-format
//! clients. Pure: JSON and event-stream messages in, JSON, SSE and
//! event-stream bytes out.
//!
//! The gateway's internal format is Anthropic Messages: every Bedrock answer
//! is turned into an Anthropic message or Anthropic SSE, and the existing
//! client translations run on that. So for each client format:
//!
//! | client | request | whole answer | stream |
//! |---|---|---|---|
//! | Messages | [`invoke::request_from_messages`] / [`converse_request::request_from_messages`] | as is / [`converse_response::response_to_messages`] | [`invoke::ChunksToSse`] / [`converse_stream::ConverseToSse`], relayed |
//! | Chat Completions | `chat_to_messages`, then the above | the above, then `response::messages_to_chat` | the above, then `stream_messages_to_chat` |
//! | Responses | `responses::plan::request_to_messages`, then the above | the above, then `responses::plan::messages_response` | the above, then `responses::plan::messages_stream` |
//!
//! [`request`], [`response`] and [`client_stream`] are that table; a
//! [`frame_translator`] sits under the relay as an HTTP body adapter
//! ([`crate::wire::eventstream::body::SseFromFrames`]).
//!
//! Front door (a Bedrock-format client; [`parse_front_path`]):
//! [`invoke::request_to_messages`] / [`front_request::request_to_messages`]
//! make the internal request; [`converse_response::response_from_messages`]
//! and the [`front_stream`] translators shape the answer (behind
//! [`front_stream::Chained`] when the upstream is not Anthropic); errors go out with
//! [`errors::front_error`] / exception messages.
//!
//! - [`betas`]: the `anthropic-beta` allowlist and the body fields Bedrock refuses;
//! - [`errors`]: exception names ↔ the gateway's error kinds.

pub mod betas;
pub mod converse_request;
pub mod converse_response;
pub mod converse_stream;
pub mod errors;
pub mod front_request;
pub mod front_stream;
pub mod invoke;

#[cfg(test)]
mod golden_tests;

use serde_json::Value;

use crate::runtime::ApiFormat;
use crate::translate::names::ToolNames;
use crate::translate::{
    Session, StreamTranslator, TargetOptions, TranslateError, chat_to_messages, response,
    responses, stream_messages_to_chat,
};
use crate::wire::eventstream::FrameTranslator;

/// The Bedrock Runtime API a request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BedrockApi {
    /// `/model/{id}/invoke` and `/invoke-with-response-stream` with an
    /// Anthropic body (Claude models).
    InvokeModel,
    /// `/model/{id}/converse` and `/converse-stream` (every other model).
    Converse,
}

/// How a backend chooses its API (the `bedrock.api` setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ApiChoice {
    /// InvokeModel for model ids naming an Anthropic model, else Converse.
    #[default]
    Auto,
    /// Always InvokeModel (e.g. an application inference profile ARN of a
    /// Claude model, whose id does not say so).
    InvokeModel,
    /// Always Converse.
    Converse,
}

impl BedrockApi {
    /// The API for `model_id` under `choice`: with `Auto`, ids containing
    /// `anthropic.` (base ids `anthropic.claude-…`, inference profiles
    /// `us.anthropic.claude-…`, ARNs of them) use InvokeModel.
    pub fn for_model(model_id: &str, choice: ApiChoice) -> Self {
        match choice {
            ApiChoice::InvokeModel => Self::InvokeModel,
            ApiChoice::Converse => Self::Converse,
            ApiChoice::Auto if model_id.contains("anthropic.") => Self::InvokeModel,
            ApiChoice::Auto => Self::Converse,
        }
    }

    /// The request path for `model_id`, e.g.
    /// `/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream`.
    pub fn path(self, model_id: &str, stream: bool) -> String {
        let op = match (self, stream) {
            (Self::InvokeModel, false) => "invoke",
            (Self::InvokeModel, true) => "invoke-with-response-stream",
            (Self::Converse, false) => "converse",
            (Self::Converse, true) => "converse-stream",
        };
        format!("/model/{}/{op}", encode_model_id(model_id))
    }
}

/// A model id as one path segment: every byte but `A-Za-z0-9-_.~` is
/// percent-encoded (`:` → `%3A`, the `/` of an ARN → `%2F`), as boto3 sends it.
pub fn encode_model_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 8);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A front-door call: which Bedrock operation a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontOp {
    /// `POST /model/{id}/invoke`.
    Invoke,
    /// `POST /model/{id}/invoke-with-response-stream`.
    InvokeStream,
    /// `POST /model/{id}/converse`.
    Converse,
    /// `POST /model/{id}/converse-stream`.
    ConverseStream,
}

impl FrontOp {
    /// Whether the answer is an event stream.
    pub fn streams(self) -> bool {
        matches!(self, Self::InvokeStream | Self::ConverseStream)
    }
}

/// Reads `…/model/{id}/{operation}` (below the route's prefix): the model id
/// percent-decoded (clients send `:` raw or as `%3A`) and the operation.
pub fn parse_front_path(path: &str) -> Option<(String, FrontOp)> {
    let rest = path.strip_prefix("/model/")?;
    let (id, op) = rest.rsplit_once('/')?;
    let op = match op {
        "invoke" => FrontOp::Invoke,
        "invoke-with-response-stream" => FrontOp::InvokeStream,
        "converse" => FrontOp::Converse,
        "converse-stream" => FrontOp::ConverseStream,
        _ => return None,
    };
    let bytes = id.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let id = String::from_utf8(decoded).ok()?;
    ((!id.is_empty() && !id.contains('/')) || id.starts_with("arn:")).then_some((id, op))
}

/// What a Bedrock request needs besides the client's body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BedrockOptions {
    /// Betas to forward (already filtered by [`betas::select`]).
    pub betas: Vec<String>,
    /// `max_tokens` when the client gave none (0: the gateway default).
    pub default_max_tokens: u64,
}

/// A request ready for Bedrock and what its answer needs.
#[derive(Clone, Debug, PartialEq)]
pub struct BedrockRequest {
    /// The upstream body.
    pub body: Value,
    /// The client-side session (Chat and Responses clients: names, usage
    /// chunk, response context).
    pub session: Session,
    /// Tool names shortened for Converse (restored in its answers).
    pub converse_names: ToolNames,
    /// Body fields removed for Bedrock (for logs).
    pub stripped: Vec<String>,
}

/// The client's request as an Anthropic Messages request (and its session).
fn to_messages(
    client: ApiFormat,
    body: &Value,
    model: &str,
    opts: &BedrockOptions,
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

/// The upstream request for a `client`-format body on `api` for `model`.
pub fn request(
    client: ApiFormat,
    api: BedrockApi,
    body: &Value,
    model: &str,
    opts: &BedrockOptions,
    now: u64,
) -> Result<BedrockRequest, TranslateError> {
    let (messages, session) = to_messages(client, body, model, opts, now)?;
    match api {
        BedrockApi::InvokeModel => {
            let (body, stripped) = invoke::request_from_messages(&messages, &opts.betas)?;
            Ok(BedrockRequest {
                body,
                session,
                converse_names: ToolNames::default(),
                stripped,
            })
        }
        BedrockApi::Converse => {
            let copts = converse_request::ConverseOptions {
                betas: opts.betas.clone(),
                default_max_tokens: opts.default_max_tokens,
            };
            let (body, names) = converse_request::request_from_messages(&messages, &copts)?;
            Ok(BedrockRequest {
                body,
                session,
                converse_names: names,
                stripped: Vec::new(),
            })
        }
    }
}

/// A whole Bedrock answer for a `client`-format request. `id` names the
/// message (Converse answers have none: the `x-amzn-requestid`, say).
pub fn response(
    client: ApiFormat,
    api: BedrockApi,
    upstream: &Value,
    req: &BedrockRequest,
    id: &str,
    model: &str,
) -> Result<Value, TranslateError> {
    let messages = match api {
        BedrockApi::InvokeModel => upstream.clone(),
        BedrockApi::Converse => {
            converse_response::response_to_messages(upstream, &req.converse_names, id, model)?
        }
    };
    match client {
        ApiFormat::Messages | ApiFormat::CountTokens => Ok(messages),
        ApiFormat::ChatCompletions => response::messages_to_chat(&messages, &req.session),
        ApiFormat::Responses => responses::plan::messages_response(&messages, &req.session),
    }
}

/// The body adapter turning a Bedrock event stream into Anthropic SSE.
pub fn frame_translator(
    api: BedrockApi,
    id: &str,
    model: &str,
    converse_names: ToolNames,
) -> Box<dyn FrameTranslator> {
    match api {
        BedrockApi::InvokeModel => Box::new(invoke::ChunksToSse::new()),
        BedrockApi::Converse => Box::new(converse_stream::ConverseToSse::new(
            id,
            model,
            converse_names,
        )),
    }
}

/// The client translation of the Anthropic SSE the adapter produces;
/// `None` relays it unchanged (Messages clients).
pub fn client_stream(client: ApiFormat, session: Session) -> Option<Box<dyn StreamTranslator>> {
    match client {
        ApiFormat::Messages | ApiFormat::CountTokens => None,
        ApiFormat::ChatCompletions => Some(stream_messages_to_chat::boxed(session)),
        ApiFormat::Responses => Some(responses::plan::messages_stream(session)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_choice_and_paths() {
        use BedrockApi::*;
        for (id, api) in [
            ("anthropic.claude-sonnet-4-20250514-v1:0", InvokeModel),
            ("us.anthropic.claude-sonnet-4-20250514-v1:0", InvokeModel),
            ("global.anthropic.claude-opus-4-7", InvokeModel),
            (
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
                InvokeModel,
            ),
            ("meta.llama3-70b-instruct-v1:0", Converse),
            ("amazon.nova-pro-v1:0", Converse),
            (
                "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
                Converse,
            ),
        ] {
            assert_eq!(BedrockApi::for_model(id, ApiChoice::Auto), api, "{id}");
        }
        assert_eq!(
            BedrockApi::for_model("arn:x/abc", ApiChoice::InvokeModel),
            InvokeModel
        );
        assert_eq!(
            BedrockApi::for_model("anthropic.claude", ApiChoice::Converse),
            Converse
        );
        assert_eq!(
            InvokeModel.path("us.anthropic.claude-sonnet-4-20250514-v1:0", true),
            "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream"
        );
        assert_eq!(
            Converse.path(
                "arn:aws:bedrock:us-east-1:123:application-inference-profile/abc",
                false
            ),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Aapplication-inference-profile%2Fabc/converse"
        );
        assert_eq!(InvokeModel.path("m", false), "/model/m/invoke");
        assert_eq!(Converse.path("m", true), "/model/m/converse-stream");
    }

    #[test]
    fn front_paths() {
        assert_eq!(
            parse_front_path("/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke"),
            Some((
                "us.anthropic.claude-sonnet-4-20250514-v1:0".into(),
                FrontOp::Invoke
            ))
        );
        assert_eq!(
            parse_front_path(
                "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke-with-response-stream"
            ),
            Some((
                "us.anthropic.claude-sonnet-4-20250514-v1:0".into(),
                FrontOp::InvokeStream
            ))
        );
        assert_eq!(
            parse_front_path(
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse-stream"
            ),
            Some((
                "arn:aws:bedrock:us-east-1:1:inference-profile/x".into(),
                FrontOp::ConverseStream
            ))
        );
        assert_eq!(
            parse_front_path("/model/gpt-4.1/converse").map(|p| p.1),
            Some(FrontOp::Converse)
        );
        for bad in [
            "/model//converse",
            "/model/x/other",
            "/v1/messages",
            "/model/a/b/converse",
            "/model/%zz/invoke",
        ] {
            assert_eq!(parse_front_path(bad), None, "{bad}");
        }
        assert!(FrontOp::InvokeStream.streams() && !FrontOp::Converse.streams());
    }
}
