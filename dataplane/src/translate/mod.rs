//! Format translation between client APIs and provider APIs.
//!
//! Pure and synchronous: JSON in, JSON out, no IO. The proxy asks [`plan`]
//! how a (client format, upstream format) pair is served:
//! [`Plan::Passthrough`] when the formats match (request and answer pass
//! untouched, zero-copy), [`Plan::Translate`] with the [`Translator`] to use,
//! or [`Plan::Estimate`] (count_tokens without an upstream endpoint: counted
//! locally by [`crate::tokens`]).
//!
//! - [`chat_to_messages`] / [`messages_to_chat`]: request bodies;
//! - [`response`]: whole (non-streaming) answers, read and written through the typed
//!   views of [`answer_wire`];
//! - [`stream_messages_to_chat`] / [`stream_chat_to_messages`]: the
//!   streaming state machines, one per direction, event by event;
//! - [`errors`]: upstream error bodies into the client's dialect;
//! - [`names`]: deterministic tool name and id mapping;
//! - [`system_messages`]: system prompts inside `messages` (Claude Code on
//!   non-Claude models) and its billing line;
//! - [`deferred_tools`]: `defer_loading` tools for backends without tool search;
//! - [`strip_usage`]: removes the usage chunk the gateway asked for itself;
//! - [`mapping`]: stop reasons and usage;
//! - [`responses`]: the OpenAI Responses API to and from both formats;
//! - [`bedrock`]: Amazon Bedrock (InvokeModel, Converse, the event-stream
//!   answers) as an upstream and as a front door;
//! - [`gemini`]: Google Gemini `generateContent` (Gemini API and Vertex AI)
//!   as an upstream;
//! - [`vertex`]: Claude on Vertex AI (`rawPredict` bodies and betas);
//! - [`azure`]: Azure OpenAI URLs and its content-filter answers.
//!
//! Adding a client format (e.g. the Responses API) means: a variant of
//! [`ApiFormat`], one arm per upstream format in [`plan`] returning a
//! [`Translator`] (its request, response and stream functions, and the
//! client's [`Dialect`] for errors), and nothing in the pipeline: every
//! provider's `plan` (`crate::providers::Provider::plan`) calls
//! `plan(client, its native format)`, its request goes to
//! [`UpstreamFormat::api_path`] with [`Translator::request`]'s body, and
//! [`Translator::response`] or [`Translator::stream`] runs on the answer. A
//! new backend format is a variant of [`UpstreamFormat`] plus its arms, or a
//! provider that shapes one of these formats further (as Bedrock does).

pub mod answer_wire;
pub mod azure;
pub mod bedrock;
pub mod bounded;
pub mod chat_to_messages;
pub mod deferred_tools;
pub mod errors;
pub mod gemini;
pub mod mapping;
pub mod messages_to_chat;
pub mod names;
pub mod response;
pub mod responses;
pub mod stream_chat_to_messages;
pub mod stream_messages_to_chat;
pub mod strip_usage;
pub mod system_messages;
pub mod vertex;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod section0_tests;
#[cfg(test)]
mod stream_tests;

use serde_json::Value;

use crate::runtime::ApiFormat;
use crate::wire::Dialect;
use crate::wire::sse::SseEvent;

pub use names::ToolNames;

/// The wire format an upstream provider speaks natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpstreamFormat {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    ChatCompletions,
    /// Anthropic Messages (`/v1/messages`).
    Messages,
}

impl UpstreamFormat {
    /// The dialect of the upstream's bodies, streams and errors.
    pub fn dialect(self) -> Dialect {
        match self {
            UpstreamFormat::ChatCompletions => Dialect::OpenAI,
            UpstreamFormat::Messages => Dialect::Anthropic,
        }
    }

    /// The client API whose path the upstream serves (used to build its URI).
    pub fn api_path(self) -> ApiFormat {
        match self {
            UpstreamFormat::ChatCompletions => ApiFormat::ChatCompletions,
            UpstreamFormat::Messages => ApiFormat::Messages,
        }
    }

    /// Short name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            UpstreamFormat::ChatCompletions => "OpenAI Chat Completions",
            UpstreamFormat::Messages => "Anthropic Messages",
        }
    }
}

/// A request field that cannot be carried to the target format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The field has no equivalent in the target format.
    #[error("`{field}` cannot be translated for the backend's {target} API: {reason}")]
    Unsupported {
        /// JSON path of the field, e.g. `messages[2].content[0].type=input_audio`.
        field: String,
        /// Target format name.
        target: &'static str,
        /// Why.
        reason: String,
    },
    /// The field is malformed for its own format.
    #[error("`{field}` is invalid: {reason}")]
    Invalid {
        /// JSON path of the field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The upstream answer could not be read (not the client's fault).
    #[error("the upstream answer could not be translated: {0}")]
    Upstream(String),
}

impl TranslateError {
    /// Shorthand for [`TranslateError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranslateError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Settings of the target backend that change the translated request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetOptions {
    /// Send `max_tokens` instead of `max_completion_tokens` (older
    /// OpenAI-compatible servers only know the former).
    pub legacy_max_tokens: bool,
    /// `max_tokens` sent to Anthropic when the client gave none.
    pub default_max_tokens: u64,
}

/// Default `max_tokens` for Anthropic targets when the client sets none (§3.8).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// What the response side of a translation needs to know about the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Tool names shortened for the target, to restore in the answer.
    pub tool_names: ToolNames,
    /// The OpenAI client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Unix time used for OpenAI `created`.
    pub created: u64,
    /// What a Responses answer needs from its request (Responses clients only).
    pub responses: Option<responses::ResponseContext>,
}

/// A translated request body and the session to translate its answer with.
#[derive(Clone, Debug, PartialEq)]
pub struct TranslatedRequest {
    /// The body for the upstream.
    pub body: Value,
    /// State for the response side.
    pub session: Session,
}

/// A translated request body, serialized, and the session to translate its
/// answer with.
#[derive(Clone, Debug)]
pub struct TranslatedBody {
    /// The body for the upstream.
    pub body: bytes::Bytes,
    /// State for the response side.
    pub session: Session,
}

impl TranslatedBody {
    /// The body as a tree (tests and tools).
    pub fn into_tree(self) -> Result<TranslatedRequest, TranslateError> {
        let body = serde_json::from_slice(&self.body)
            .map_err(|e| TranslateError::invalid("body", e.to_string()))?;
        Ok(TranslatedRequest {
            body,
            session: self.session,
        })
    }
}

/// A streaming translator: upstream SSE events in, client SSE bytes out.
/// It sees every well-formed upstream event in order (comments bypass it),
/// must never emit a terminal event the upstream did not justify, and
/// reports the upstream's in-stream errors as the client's in-band error.
pub trait StreamTranslator: Send {
    /// Translates one upstream event, appending client bytes to `out`.
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>);

    /// Writes the client's in-band event for a failure the gateway itself
    /// detected (upstream cut, truncation, stall) and returns true; the
    /// default returns false and the relay writes its generic error event.
    fn error_event(
        &mut self,
        _kind: crate::wire::ErrorKind,
        _message: &str,
        _out: &mut Vec<u8>,
    ) -> bool {
        false
    }

    /// The client's stream is complete (its terminal event was sent), even
    /// if the upstream has not sent its own terminal event yet.
    fn finished(&self) -> bool {
        false
    }

    /// The client gets the upstream's Chat Completions chunks as they are
    /// (this translator only removes some), so the relay may judge the
    /// stream's completeness from them.
    fn passes_chat_through(&self) -> bool {
        false
    }
}

/// Request translation: client body → upstream body, in bounded memory (see
/// [`bounded`]).
pub type RequestFn = fn(
    &crate::body::RequestJson,
    &str,
    &TargetOptions,
    u64,
) -> Result<TranslatedBody, TranslateError>;
/// Whole-answer translation: upstream body → client body, as JSON text.
pub type ResponseFn = fn(&[u8], &Session) -> Result<TranslatedAnswer, TranslateError>;

/// A whole answer translated for the client.
#[derive(Debug)]
pub struct TranslatedAnswer {
    /// The client's body (JSON text).
    pub body: Vec<u8>,
    /// The upstream's usage, when the translation read it on the way (the
    /// same counts [`crate::wire::usage::from_json_response`] reads, so the
    /// answer is not parsed twice); `None` leaves reading it to the caller.
    pub usage: Option<crate::wire::usage::Usage>,
}

impl TranslatedAnswer {
    /// A translated body whose usage the caller reads itself.
    pub fn body_only(body: Vec<u8>) -> Self {
        Self { body, usage: None }
    }
}
/// Builds a streaming translator for one answer.
pub type StreamFn = fn(Session) -> Box<dyn StreamTranslator>;

/// The translation functions of one (client format, upstream format) pair.
#[derive(Clone, Copy)]
pub struct Translator {
    /// The upstream's format.
    pub upstream: UpstreamFormat,
    /// The client's dialect (errors, in-band events).
    pub client: Dialect,
    /// Request body translation.
    pub request: RequestFn,
    /// Non-streaming answer translation.
    pub response: ResponseFn,
    /// Streaming answer translation.
    pub stream: StreamFn,
}

impl std::fmt::Debug for Translator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translator")
            .field("upstream", &self.upstream)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// How a request in `client` format reaches an upstream in `upstream` format.
#[derive(Clone, Copy, Debug)]
pub enum Plan {
    /// Same format: forward as is.
    Passthrough,
    /// Translate with these functions.
    Translate(Translator),
    /// Answer locally (count_tokens on a non-Anthropic upstream, counted with
    /// the model's OpenAI tokenizer, see [`crate::tokens`]).
    Estimate,
    /// No way to serve this pair.
    Unsupported,
}

/// The table: which translation serves `client` on an `upstream` backend.
pub fn plan(client: ApiFormat, upstream: UpstreamFormat) -> Plan {
    use UpstreamFormat as U;
    match (client, upstream) {
        (ApiFormat::ChatCompletions, U::ChatCompletions) => Plan::Passthrough,
        (ApiFormat::Messages | ApiFormat::CountTokens, U::Messages) => Plan::Passthrough,
        (ApiFormat::ChatCompletions, U::Messages) => Plan::Translate(Translator {
            upstream,
            client: Dialect::OpenAI,
            request: chat_to_messages::translate_json,
            response: response::messages_to_chat_answer,
            stream: stream_messages_to_chat::boxed,
        }),
        (ApiFormat::Messages, U::ChatCompletions) => Plan::Translate(Translator {
            upstream,
            client: Dialect::Anthropic,
            request: messages_to_chat::translate_json,
            response: |b, s| response::chat_to_messages_json(b, s).map(TranslatedAnswer::body_only),
            stream: stream_chat_to_messages::boxed,
        }),
        (ApiFormat::CountTokens, U::ChatCompletions) => Plan::Estimate,
        (ApiFormat::Responses, U::ChatCompletions) => Plan::Translate(Translator {
            upstream,
            client: Dialect::OpenAI,
            request: responses::plan::request_to_chat_json,
            response: |b, s| {
                responses::plan::chat_response_json(b, s).map(TranslatedAnswer::body_only)
            },
            stream: responses::plan::chat_stream,
        }),
        (ApiFormat::Responses, U::Messages) => Plan::Translate(Translator {
            upstream,
            client: Dialect::OpenAI,
            request: responses::plan::request_to_messages_json,
            response: |b, s| {
                responses::plan::messages_response_json(b, s).map(TranslatedAnswer::body_only)
            },
            stream: responses::plan::messages_stream,
        }),
    }
}
