//! How a mock upstream answers one request. Serialisable (tag `kind`) so the mocks binary and the
//! Python tests can script it as JSON, e.g. `{"kind":"Status","status":503}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{self, Flavor};

/// One scripted answer of a [`crate::MockUpstream`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Behaviour {
    /// 200 with `text`, as JSON or SSE depending on the request's `stream` flag; usage estimated.
    Ok {
        /// Assistant text (streamed as several deltas).
        text: String,
    },
    /// Like `Ok` with fixed usage (`input` excludes `cached`, Anthropic style).
    OkWithUsage {
        /// Assistant text.
        text: String,
        /// Uncached input tokens.
        input: u64,
        /// Output tokens.
        output: u64,
        /// Cache-read input tokens.
        #[serde(default)]
        cached: u64,
    },
    /// Answer `status` with `body` (a provider-shaped error for the status when `null`) and headers.
    Status {
        /// HTTP status code.
        status: u16,
        /// JSON body; `null` means the flavor's default error body for `status`.
        #[serde(default)]
        body: Value,
        /// Extra response headers, e.g. `("retry-after", "1")`.
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// Close the TCP connection without answering.
    Reset,
    /// Never answer (the connection stays open until the client gives up).
    Silence,
    /// Wait `ms` milliseconds before sending response headers, then answer like `Ok`.
    SlowFirstByte {
        /// Delay before the response head.
        ms: u64,
    },
    /// 200 stream, send the first `after_events` SSE events, then abort the connection.
    CutStream {
        /// Number of events sent before the cut.
        after_events: usize,
    },
    /// 200 stream, send the first `after_events` SSE events, then hang without closing.
    StallStream {
        /// Number of events sent before stalling.
        after_events: usize,
    },
    /// A good stream with one `data:` line that is not valid JSON after the first event
    /// (Bedrock: a message whose CRC does not match).
    MalformedEvent,
    /// 200 stream, send the first `after_events` events, then the provider's in-stream error
    /// (Anthropic `event: error`, OpenAI `data: {"error":…}`, a Bedrock exception message named
    /// `exception`, e.g. `throttlingException`) and end the stream.
    StreamException {
        /// Number of events sent before the error.
        after_events: usize,
        /// Bedrock `:exception-type` (lowerCamel); also picks the error type of the others.
        exception: String,
        /// The error message.
        message: String,
    },
    /// 200 stream, send the first `after_events` SSE events (and, with `ping`, the provider's own
    /// keep-alive: Anthropic `event: ping`, an SSE comment for OpenAI), then wait until the test
    /// calls [`crate::MockUpstream::release`] (or `POST /__mock/release`), then send the rest
    /// (the Bedrock flavour stalls instead).
    HeldStream {
        /// Number of events sent before waiting.
        after_events: usize,
        /// Send one upstream keep-alive before waiting.
        #[serde(default)]
        ping: bool,
    },
    /// 200 with one tool call (`arguments` is a JSON object), JSON or SSE like `Ok`.
    ToolCall {
        /// Tool name.
        name: String,
        /// Arguments object.
        arguments: Value,
    },
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour::Ok {
            text: DEFAULT_TEXT.to_string(),
        }
    }
}

/// Text answered by default.
pub const DEFAULT_TEXT: &str = "Hello from the mock upstream";

impl Behaviour {
    /// `Ok` with the given text.
    pub fn ok(text: &str) -> Self {
        Behaviour::Ok {
            text: text.to_string(),
        }
    }

    /// A status with the flavor's default error body.
    pub fn status(status: u16) -> Self {
        Behaviour::Status {
            status,
            body: Value::Null,
            headers: Vec::new(),
        }
    }

    /// 429 with a `retry-after` header of `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        Behaviour::Status {
            status: 429,
            body: Value::Null,
            headers: vec![("retry-after".to_string(), seconds.to_string())],
        }
    }

    /// 400 "context length exceeded" in the flavor's wire format.
    pub fn context_length_exceeded(flavor: Flavor) -> Self {
        Behaviour::Status {
            status: 400,
            body: wire::context_length_body(flavor),
            headers: Vec::new(),
        }
    }

    /// 400 "content policy" rejection in the flavor's wire format.
    pub fn content_policy(flavor: Flavor) -> Self {
        Behaviour::Status {
            status: 400,
            body: wire::content_policy_body(flavor),
            headers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_shape_is_tagged_by_kind() {
        let b: Behaviour =
            serde_json::from_value(json!({"kind": "Status", "status": 503})).unwrap();
        assert_eq!(b, Behaviour::status(503));
        let b: Behaviour =
            serde_json::from_value(json!({"kind": "CutStream", "after_events": 2})).unwrap();
        assert_eq!(b, Behaviour::CutStream { after_events: 2 });
        assert_eq!(
            serde_json::to_value(Behaviour::Reset).unwrap(),
            json!({"kind": "Reset"})
        );
        let b: Behaviour = serde_json::from_value(
            json!({"kind": "Status", "status": 429, "headers": [["retry-after", "1"]]}),
        )
        .unwrap();
        assert_eq!(b, Behaviour::rate_limited(1));
    }
}
