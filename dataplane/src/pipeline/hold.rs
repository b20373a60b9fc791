//! Holding a stream until its first content event (issue 12, item 12).
//!
//! A 200 with SSE headers says nothing about whether the answer will come:
//! an upstream can send its headers at once and its first token much later,
//! or never. So the client's response head is not sent when the upstream's
//! arrives; the attempt stage reads the upstream stream until its first
//! *content* event, within the backend's `firstToken` timeout, and only
//! then commits to this candidate. Until then no byte has gone to the
//! client, so failing over to the next candidate is still invisible.
//!
//! Not content (held): SSE comments, Anthropic `ping` and `message_start`,
//! OpenAI chunks that only announce the assistant role, and the Responses
//! API's `response.created` / `response.in_progress`. Everything else is
//! content, including errors and terminal events (the relay handles them).
//! The bytes read while holding are replayed to the relay unchanged
//! ([`Prefixed`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::time::Instant;

use crate::upstream::{BodyError, UpstreamBody};
use crate::wire::Dialect;
use crate::wire::split::EventSplitter;
use crate::wire::sse::{DEFAULT_MAX_EVENT_BYTES, WholeEvent, parse_whole};

/// Bytes read while holding before the hold gives up and relays anyway.
const HOLD_LIMIT: usize = 1 << 20;

/// Why a held stream never showed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldError {
    /// No content event before the deadline.
    Timeout,
    /// The stream broke before its first content event.
    Broken,
    /// The stream ended cleanly without any content event.
    Empty,
    /// The first content event is an error (its data): nothing reached the
    /// client yet, so the attempt failed like an error status.
    ErrorEvent(Bytes),
}

/// Reads `body` until its first content event or `deadline`; returns the
/// bytes read so far and the rest of the body.
pub async fn first_content(
    mut body: UpstreamBody,
    dialect: Dialect,
    deadline: Instant,
) -> Result<(Bytes, UpstreamBody), HoldError> {
    let mut splitter = EventSplitter::new(DEFAULT_MAX_EVENT_BYTES);
    let mut read = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(HoldError::Timeout),
            Ok(None) => {
                // A last event without its blank line still counts.
                let tail = splitter.finish();
                if tail.as_deref().is_some_and(|t| is_content(dialect, t)) {
                    return Ok((read.freeze(), body));
                }
                return Err(HoldError::Empty);
            }
            Ok(Some(Err(_))) => return Err(HoldError::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read.extend_from_slice(&data);
        let split = splitter.push(&data);
        if split.oversized > 0 {
            return Ok((read.freeze(), body));
        }
        if let Some(first) = split.events.iter().find(|e| is_content(dialect, e)) {
            if is_error(dialect, first) {
                return Err(HoldError::ErrorEvent(error_data(first)));
            }
            return Ok((read.freeze(), body));
        }
        if read.len() > HOLD_LIMIT {
            return Ok((read.freeze(), body));
        }
    }
}

/// Whether one complete raw event carries content (see the module docs).
pub fn is_content(dialect: Dialect, raw: &[u8]) -> bool {
    let event = match parse_whole(raw) {
        WholeEvent::NoData => return false,
        WholeEvent::NotUtf8 => return true,
        WholeEvent::Event(e) => e,
    };
    let data = event.data.trim();
    if data.is_empty() {
        return false;
    }
    match dialect {
        Dialect::Anthropic => !matches!(event.event, Some("ping" | "message_start")),
        Dialect::OpenAI => {
            if data == "[DONE]" {
                return true;
            }
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                return true; // malformed: the relay drops and counts it
            };
            if let Some(kind) = v.get("type").and_then(Value::as_str) {
                return !matches!(kind, "response.created" | "response.in_progress");
            }
            if v.get("error").is_some_and(|e| !e.is_null())
                || v.get("usage").is_some_and(|u| !u.is_null())
            {
                return true;
            }
            v.get("choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    let finished = c.get("finish_reason").is_some_and(|r| !r.is_null());
                    let delta = c.get("delta");
                    let has = |k: &str| {
                        delta
                            .and_then(|d| d.get(k))
                            .is_some_and(|x| !x.is_null() && x != "" && x != &Value::Array(vec![]))
                    };
                    finished
                        || has("content")
                        || has("tool_calls")
                        || has("function_call")
                        || has("refusal")
                        || has("reasoning_content")
                        || has("reasoning")
                })
        }
    }
}

/// Whether one complete raw event is an in-stream error.
fn is_error(dialect: Dialect, raw: &[u8]) -> bool {
    let WholeEvent::Event(event) = parse_whole(raw) else {
        return false;
    };
    if event.event == Some("error") {
        return true;
    }
    dialect == Dialect::OpenAI
        && serde_json::from_str::<Value>(event.data.trim())
            .ok()
            .is_some_and(|v| {
                v.get("error").is_some_and(|e| !e.is_null())
                    || v.get("type").and_then(Value::as_str) == Some("error")
            })
}

/// The data of an error event.
fn error_data(raw: &[u8]) -> Bytes {
    match parse_whole(raw) {
        WholeEvent::Event(e) => Bytes::copy_from_slice(e.data.trim().as_bytes()),
        _ => Bytes::new(),
    }
}

/// A body that yields `prefix` first, then `inner`.
pub struct Prefixed<B> {
    prefix: Option<Bytes>,
    inner: B,
}

impl<B> Prefixed<B> {
    /// `prefix` (skipped when empty), then `inner`.
    pub fn new(prefix: Bytes, inner: B) -> Self {
        Self {
            prefix: (!prefix.is_empty()).then_some(prefix),
            inner,
        }
    }
}

impl<B> Body for Prefixed<B>
where
    B: Body<Data = Bytes, Error = BodyError> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(p) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn keep_alives_and_preambles_are_not_content() {
        let a = Dialect::Anthropic;
        assert!(!is_content(a, &event(": keep-alive\n\n")));
        assert!(!is_content(
            a,
            &event("event: ping\ndata: {\"type\":\"ping\"}\n\n")
        ));
        assert!(!is_content(
            a,
            &event("event: message_start\ndata: {\"type\":\"message_start\"}\n\n")
        ));
        assert!(is_content(
            a,
            &event("event: content_block_start\ndata: {\"type\":\"content_block_start\"}\n\n")
        ));
        assert!(is_content(
            a,
            &event("event: error\ndata: {\"type\":\"error\"}\n\n")
        ));
        let o = Dialect::OpenAI;
        assert!(!is_content(
            o,
            &event(
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
            )
        ));
        assert!(is_content(
            o,
            &event("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n")
        ));
        assert!(is_content(
            o,
            &event(
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
            )
        ));
        assert!(is_content(o, &event("data: [DONE]\n\n")));
        assert!(!is_content(
            o,
            &event("event: response.created\ndata: {\"type\":\"response.created\"}\n\n")
        ));
        assert!(is_content(
            o,
            &event("data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\n")
        ));
    }
}
