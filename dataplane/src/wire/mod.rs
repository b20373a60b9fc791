//! The two client wire formats the gateway speaks: OpenAI Chat Completions
//! and Anthropic Messages.
//!
//! Everything here is format knowledge with no IO of its own:
//! - [`error`]: error bodies and in-stream error events in either dialect;
//! - [`sse`]: an incremental Server-Sent Events parser;
//! - [`usage`]: token usage and stop reasons read from streams and bodies;
//! - [`split`]: cuts an SSE byte stream into whole raw events;
//! - [`relay`]: the streaming body that forwards upstream SSE events byte
//!   for byte as each completes, drops malformed ones, and watches for usage,
//!   the terminal event, stalls and truncation (or, for a backend of the
//!   other format, runs a [`crate::translate::StreamTranslator`] per event);
//! - [`mock`]: the built-in deterministic `Mock` provider;
//! - [`eventstream`]: the AWS event-stream binary framing (Bedrock streams);
//! - [`redact`]: provider keys and internal URLs taken out of upstream error bodies.

pub mod answer_scan;
pub mod error;
pub mod eventstream;
pub mod lenient;
pub mod mock;
pub mod redact;
pub mod relay;
pub mod split;
pub mod sse;
pub mod usage;

pub use error::{ErrorKind, error_body, stream_error_event};

/// The wire format a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    OpenAI,
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
}

impl Dialect {
    /// A short, stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Dialect::OpenAI => "openai",
            Dialect::Anthropic => "anthropic",
        }
    }
}

/// The keep-alive a client of `dialect` expects on a silent stream:
/// Anthropic's `ping` event, an SSE comment for OpenAI formats.
pub fn keepalive_event(dialect: Dialect) -> bytes::Bytes {
    match dialect {
        Dialect::Anthropic => {
            bytes::Bytes::from_static(b"event: ping\ndata: {\"type\": \"ping\"}\n\n")
        }
        Dialect::OpenAI => bytes::Bytes::from_static(b": keep-alive\n\n"),
    }
}
