//! The OpenAI Responses API (`POST /v1/responses`, what Codex CLI speaks)
//! translated to Chat Completions and Anthropic Messages, and their answers
//! translated back, whole or event by event.
//!
//! Everything here is pure and synchronous:
//! - [`input`] and [`tools`] read a Responses request into neutral parts
//!   (validated once, with a clear 400 for what cannot be translated);
//! - [`to_chat`] and [`to_messages`] render those parts as a provider body;
//! - [`context`] keeps what the answer needs from the request (the client's
//!   model name, echoed fields, the tool-name map) and builds the Responses
//!   object shell and usage;
//! - [`response`] translates whole (non-streaming) answers;
//! - [`mock`] answers Responses requests for the built-in `Mock` provider;
//! - [`plan`] adapts all of this to the [`crate::translate::plan`] table
//!   (the proxy runs the stream translators inside
//!   [`crate::wire::relay::Relay`]; upstream errors are re-shaped by
//!   [`crate::translate::errors`]);
//! - [`emit`] is the Responses event writer (ids, indices, sequence numbers,
//!   item ordering) driven by the two stream state machines,
//!   [`stream_chat`] (Chat Completions chunks) and [`stream_messages`]
//!   (Anthropic Messages events).
//!
//! Rules that lose information are listed in `docs/responses.md`.

pub mod context;
pub mod emit;
pub mod input;
pub mod mock;
pub mod plan;
pub mod response;
pub mod stream_chat;
pub mod stream_messages;
pub mod to_chat;
pub mod to_messages;
pub mod tools;

#[cfg(test)]
mod golden_tests;

pub use context::{ResponseContext, ToolNames};
pub use emit::ResponsesEvent;
pub use response::{from_chat_response, from_messages_response};
pub use stream_chat::ChatStreamTranslator;
pub use stream_messages::MessagesStreamTranslator;
pub use to_chat::to_chat;
pub use to_messages::{MessagesOptions, to_messages};

/// A Responses request the gateway cannot translate. Always the client's
/// fault, answered with 400 and `param` naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ResponsesError {
    /// The request field at fault, as a JSON-path-like string.
    pub param: String,
    /// A message safe to show the client.
    pub message: String,
}

impl ResponsesError {
    /// An error about `param`.
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// A translated request: the provider body and what the answer needs.
#[derive(Clone, Debug)]
pub struct Translated {
    /// The provider request body.
    pub body: serde_json::Value,
    /// What the translation of the answer needs from the request.
    pub context: ResponseContext,
}
