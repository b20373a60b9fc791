//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`),
//! which Bedrock uses for every streaming answer (`/converse-stream`,
//! `/invoke-with-response-stream`) and which the gateway speaks back to
//! Bedrock-format clients (boto3, `AnthropicBedrock`, Claude Code in Bedrock
//! mode).
//!
//! One message, all integers big-endian (`protocols.md` §4.6):
//!
//! ```text
//! | total_length u32 | headers_length u32 | prelude_crc u32 |   prelude: 12 bytes
//! | headers (headers_length bytes)                          |
//! | payload (total_length - headers_length - 16 bytes)       |
//! | message_crc u32                                          |   CRC32 of everything before it
//! ```
//!
//! `prelude_crc` is the CRC32 (IEEE, as zlib) of the first 8 bytes. A header
//! is `name_len u8 | name | type u8 | value`, with the value types of
//! [`HeaderValue`]. Bedrock's headers: `:message-type` (`event`, `exception`
//! or `error`), `:event-type` (`chunk`, `messageStart`, ...), `:content-type`,
//! `:exception-type` (`throttlingException`, ...) on exceptions, and
//! `:error-code` / `:error-message` on errors ([`Message::kind`]).
//!
//! - [`decode::Decoder`]: incremental; feed it chunks split anywhere. The
//!   prelude is checked (CRC, lengths, size bound) as soon as its 12 bytes
//!   are in, so a corrupt length never makes it buffer; a message is
//!   returned only whole and with a matching CRC. After a framing error the
//!   stream cannot be resynchronised and the decoder stays failed.
//! - [`encode`]: the inverse, and constructors for the three message kinds;
//! - [`body::SseFromFrames`]: an HTTP body adapter turning an upstream
//!   event-stream body into SSE bytes through a [`FrameTranslator`] (Bedrock
//!   streams become Anthropic SSE, which the relay and the translators read).
//!
//! Both are pure; fuzzed by `fuzz_tests` (random messages, random splits,
//! corrupted and truncated framing, random garbage) with a fixed case count.

pub mod body;
pub mod decode;
pub mod encode;

#[cfg(test)]
mod fuzz_tests;

use bytes::Bytes;

pub use decode::{Decoder, FrameError};
pub use encode::{encode, error_message, event_message, exception_message};

/// Content type of an event-stream HTTP body.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Bytes of the prelude (total length, headers length, prelude CRC).
pub const PRELUDE_LEN: usize = 12;

/// Bytes of framing around headers and payload (prelude and message CRC).
pub const OVERHEAD: usize = PRELUDE_LEN + 4;

/// Largest message the decoder accepts by default: the AWS limits of
/// 128 KiB of headers and 16 MiB of payload.
pub const DEFAULT_MAX_MESSAGE: usize = (16 << 20) + (128 << 10) + OVERHEAD;

/// Turns event-stream messages into SSE bytes (one implementation per
/// upstream API: Bedrock InvokeModel `chunk`s, Converse typed events).
pub trait FrameTranslator: Send {
    /// Handles one message, appending SSE bytes to `out`.
    fn message(&mut self, msg: &Message, out: &mut Vec<u8>);

    /// The framing broke (the stream cannot continue): appends the in-band
    /// error event for it.
    fn frame_error(&mut self, error: &FrameError, out: &mut Vec<u8>);

    /// The upstream body ended (cleanly or not); appends anything held back.
    fn end(&mut self, _out: &mut Vec<u8>) {}
}

/// A header value, by wire type number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false); no value bytes.
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3: i16.
    Short(i16),
    /// Type 4: i32.
    Int(i32),
    /// Type 5: i64.
    Long(i64),
    /// Type 6: u16 length + bytes.
    Bytes(Bytes),
    /// Type 7: u16 length + UTF-8.
    String(String),
    /// Type 8: milliseconds since the Unix epoch, i64.
    Timestamp(i64),
    /// Type 9: 16 bytes.
    Uuid([u8; 16]),
}

/// One header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Its name (1 to 255 bytes of UTF-8).
    pub name: String,
    /// Its value.
    pub value: HeaderValue,
}

impl Header {
    /// A string header.
    pub fn string(name: &str, value: &str) -> Self {
        Self {
            name: name.to_string(),
            value: HeaderValue::String(value.to_string()),
        }
    }
}

/// One event-stream message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<Header>,
    /// The payload.
    pub payload: Bytes,
}

/// What a message is, from its `:message-type` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `:message-type: event` with its `:event-type` (empty when missing).
    Event(&'a str),
    /// `:message-type: exception` with its `:exception-type` (a modelled
    /// error such as `throttlingException`; the payload is `{"message":…}`).
    Exception(&'a str),
    /// `:message-type: error` with `:error-code` and `:error-message`.
    Error {
        /// `:error-code`.
        code: &'a str,
        /// `:error-message`.
        message: &'a str,
    },
    /// No or an unknown `:message-type`.
    Unknown,
}

impl Message {
    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }

    /// The value of a string header.
    pub fn string_header(&self, name: &str) -> Option<&str> {
        match self.header(name)? {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// What the message is.
    pub fn kind(&self) -> Kind<'_> {
        let get = |n| self.string_header(n).unwrap_or_default();
        match self.string_header(":message-type") {
            Some("event") => Kind::Event(get(":event-type")),
            Some("exception") => Kind::Exception(get(":exception-type")),
            Some("error") => Kind::Error {
                code: get(":error-code"),
                message: get(":error-message"),
            },
            _ => Kind::Unknown,
        }
    }
}
