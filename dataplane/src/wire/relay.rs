//! The streaming body that relays an upstream SSE answer to the client.
//!
//! Bytes go to the client exactly as they arrive, frame by frame: nothing is
//! buffered whole and nothing is re-serialized. A copy of each frame is
//! parsed on the side ([`SseParser`] + [`UsageTracker`]) to learn usage, the
//! stop reason and whether the stream ended properly. How the relay ends:
//!
//! | upstream                                   | client gets                         | outcome          |
//! |--------------------------------------------|-------------------------------------|------------------|
//! | terminal event (`[DONE]` / `message_stop`) then end | the bytes                  | `completed`      |
//! | in-stream error (`event: error` / `{"error":…}`), any end | the bytes              | `upstream_error` |
//! | body error mid-stream                      | bytes + an in-band error event      | `upstream_error` |
//! | end without terminal event                 | bytes + an in-band error event      | `truncated`      |
//! | silent for the idle timeout                | bytes + an in-band timeout event    | `stalled`        |
//! | client drops the body first                | —                                   | `client_gone`    |
//!
//! A fake terminal event is never appended. `on_finish` runs exactly once,
//! when the outcome is decided (or on drop).

use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};

use super::Dialect;
use super::error::{ErrorKind, stream_error_event};
use super::sse::SseParser;
use super::usage::{self, EventClass, Usage, UsageTracker};

/// The error type of a relayed body.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// How a relayed stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayOutcome {
    /// The terminal event arrived.
    Completed,
    /// The upstream ended without the terminal event.
    Truncated,
    /// The upstream was silent for longer than the idle timeout.
    Stalled,
    /// The upstream reported an error in-band, or its body failed.
    UpstreamError,
    /// The client went away before the end.
    ClientGone,
}

impl RelayOutcome {
    /// A stable, low-cardinality label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            RelayOutcome::Completed => "completed",
            RelayOutcome::Truncated => "truncated",
            RelayOutcome::Stalled => "stalled",
            RelayOutcome::UpstreamError => "upstream_error",
            RelayOutcome::ClientGone => "client_gone",
        }
    }
}

/// What a relay saw, handed to `on_finish`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelaySummary {
    /// Usage seen in the stream (the last reported values).
    pub usage: Usage,
    /// The stop reason seen (`finish_reason` / `stop_reason`).
    pub stop_reason: Option<String>,
    /// How the stream ended.
    pub outcome: RelayOutcome,
    /// Events whose data was not JSON where JSON is expected, or too large.
    pub malformed_events: u64,
    /// Upstream bytes relayed (appended error events not counted).
    pub bytes: u64,
    /// When the first non-empty data frame arrived.
    pub first_byte_at: Option<Instant>,
}

/// Callback receiving the summary; runs exactly once.
pub type OnFinish = Box<dyn FnOnce(RelaySummary) + Send>;

/// Relays an upstream SSE body; see the module docs.
pub struct Relay<B> {
    inner: Pin<Box<B>>,
    dialect: Dialect,
    parser: SseParser,
    tracker: UsageTracker,
    idle_timeout: Duration,
    idle: Option<Pin<Box<Sleep>>>,
    done: bool,
    saw_terminal: bool,
    saw_error: bool,
    malformed: u64,
    bytes: u64,
    first_byte_at: Option<Instant>,
    on_finish: Option<OnFinish>,
}

impl<B> Relay<B> {
    /// Wraps `body`. An `idle_timeout` of zero disables stall detection.
    /// Must be called inside a tokio runtime (the idle timer is a tokio timer).
    pub fn new(body: B, dialect: Dialect, idle_timeout: Duration, on_finish: OnFinish) -> Self {
        let idle = (!idle_timeout.is_zero()).then(|| Box::pin(tokio::time::sleep(idle_timeout)));
        Self {
            inner: Box::pin(body),
            dialect,
            parser: SseParser::default(),
            tracker: UsageTracker::new(dialect),
            idle_timeout,
            idle,
            done: false,
            saw_terminal: false,
            saw_error: false,
            malformed: 0,
            bytes: 0,
            first_byte_at: None,
            on_finish: Some(on_finish),
        }
    }

    fn inspect(&mut self, data: &Bytes) {
        if data.is_empty() {
            return;
        }
        self.bytes += data.len() as u64;
        if self.first_byte_at.is_none() {
            self.first_byte_at = Some(Instant::now());
        }
        for item in self.parser.feed(data) {
            self.classify(item);
        }
    }

    fn classify(&mut self, item: Result<super::sse::SseEvent, super::sse::SseError>) {
        match item {
            Ok(event) => match self.tracker.observe(&event) {
                EventClass::Data => {}
                EventClass::Terminal => self.saw_terminal = true,
                EventClass::Error => self.saw_error = true,
                EventClass::Malformed => self.malformed += 1,
            },
            Err(_) => self.malformed += 1,
        }
    }

    fn finish(&mut self, outcome: RelayOutcome) {
        if let Some(f) = self.on_finish.take() {
            f(RelaySummary {
                usage: self.tracker.usage(),
                stop_reason: self.tracker.stop_reason().map(str::to_owned),
                outcome,
                malformed_events: self.malformed,
                bytes: self.bytes,
                first_byte_at: self.first_byte_at,
            });
        }
    }

    /// Ends the stream with `outcome`, appending an in-band error event
    /// when `error` is given.
    /// `mid_event` says the client has a partial line or event, which is
    /// closed first so the error event parses on its own.
    fn end(
        &mut self,
        outcome: RelayOutcome,
        error: Option<(ErrorKind, &str)>,
        mid_event: bool,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.finish(outcome);
        match error {
            Some((kind, message)) => {
                let event = stream_error_event(self.dialect, kind, message);
                let tail = if !mid_event {
                    event
                } else {
                    let mut t = Vec::with_capacity(event.len() + 2);
                    t.extend_from_slice(b"\n\n");
                    t.extend_from_slice(&event);
                    Bytes::from(t)
                };
                self.done = true;
                Poll::Ready(Some(Ok(Frame::data(tail))))
            }
            None => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }

    /// The upstream ended cleanly: decide between completed, error, truncated.
    fn upstream_ended(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mid_event = !self.parser.at_boundary();
        if let Some(item) = self.parser.finish() {
            self.classify(item);
        }
        if self.saw_error {
            self.end(RelayOutcome::UpstreamError, None, false)
        } else if self.saw_terminal {
            self.end(RelayOutcome::Completed, None, false)
        } else {
            self.end(
                RelayOutcome::Truncated,
                Some((
                    ErrorKind::Api,
                    "upstream stream ended before the response was complete",
                )),
                mid_event,
            )
        }
    }
}

impl<B> Drop for Relay<B> {
    fn drop(&mut self) {
        self.finish(RelayOutcome::ClientGone);
    }
}

impl<B> Body for Relay<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(idle) = this.idle.as_mut() {
                    idle.as_mut().reset(Instant::now() + this.idle_timeout);
                }
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    this.inspect(&data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                tracing::debug!(error = %e, "upstream stream failed");
                if this.saw_error {
                    this.end(RelayOutcome::UpstreamError, None, false)
                } else if this.saw_terminal {
                    this.end(RelayOutcome::Completed, None, false)
                } else {
                    this.end(
                        RelayOutcome::UpstreamError,
                        Some((
                            ErrorKind::Api,
                            "upstream connection failed during the stream",
                        )),
                        !this.parser.at_boundary(),
                    )
                }
            }
            Poll::Ready(None) => this.upstream_ended(),
            Poll::Pending => {
                let expired = this
                    .idle
                    .as_mut()
                    .is_some_and(|s| s.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                if this.saw_error {
                    this.end(RelayOutcome::UpstreamError, None, false)
                } else if this.saw_terminal {
                    this.end(RelayOutcome::Completed, None, false)
                } else {
                    let secs = this.idle_timeout.as_secs_f64();
                    let message = format!("upstream stream stalled: no data for {secs}s");
                    let mid_event = !this.parser.at_boundary();
                    this.end(
                        RelayOutcome::Stalled,
                        Some((ErrorKind::Timeout, &message)),
                        mid_event,
                    )
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// Usage and stop reason of a complete (non-streaming) JSON response in
/// `dialect`; `None` when the body carries no usage (see
/// [`usage::from_json_response`]).
pub fn usage_from_json_response(dialect: Dialect, body: &[u8]) -> Option<(Usage, Option<String>)> {
    usage::from_json_response(dialect, body)
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// The committed upstream stream captures (`testdata/upstream/*.sse`).
    pub const CAPTURES: &[&str] = &[
        "openai_text_usage_cached",
        "openai_tool_calls_no_usage",
        "anthropic_tool_use_cache",
        "anthropic_error_midstream",
        "openai_error_chunk",
    ];

    /// Path of a capture's `.sse` file.
    pub fn capture_path(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/wire/testdata/upstream")
            .join(format!("{name}.sse"))
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
