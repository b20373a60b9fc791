//! The streaming body that relays an upstream SSE answer to the client.
//!
//! Events go to the client byte for byte as soon as each one is complete:
//! nothing is buffered whole and nothing is re-serialized. The stream is cut
//! into raw events ([`EventSplitter`]); each is parsed on the side
//! ([`SseParser`] + [`UsageTracker`]) to learn usage, the stop reason and
//! whether the stream ended properly. A malformed event (data that is not
//! JSON where JSON is expected, or an event above the size limit) is dropped
//! and counted, never forwarded. Comment-only events (keepalives) pass. How
//! the relay ends:
//!
//! | upstream                                   | client gets                         | outcome          |
//! |--------------------------------------------|-------------------------------------|------------------|
//! | terminal event (`[DONE]` / `message_stop`) then end | the bytes                  | `completed`      |
//! | in-stream error (`event: error` / `{"error":…}`), any end | the bytes              | `upstream_error` |
//! | body error mid-stream                      | bytes + an in-band error event      | `upstream_error` |
//! | end without terminal event                 | bytes + an in-band error event      | `truncated`      |
//! | silent for the idle timeout                | bytes + an in-band timeout event    | `stalled`        |
//! | still running at the maximum duration      | bytes + an in-band timeout event    | `max_duration`   |
//! | client drops the body first                | —                                   | `client_gone`    |
//!
//! A fake terminal event is never appended. `on_finish` runs exactly once,
//! when the outcome is decided, or on drop — after reading the upstream on
//! in the background for its usage when [`Relay::draining_on_hangup`] says
//! so (the summary then carries the usage of the whole upstream answer).
//!
//! Cost per event (untranslated streams): the events completed by one
//! upstream chunk are forwarded as the one buffer they arrived in (copied
//! only when one of them is dropped); each is read in place
//! ([`parse_whole`], no copy unless it has several `data:` lines) and its
//! data goes through the JSON parser once. The malformed rule is unchanged
//! and holds for every event: an event with data whose data is not valid
//! JSON (OpenAI's `[DONE]` excepted) is dropped and counted, whatever its
//! name. Only events that can carry usage, a stop reason, the end or an
//! error are read further ([`UsageTracker::observe_data`]). The idle timer
//! is not re-armed per frame: it is moved to the last frame's time plus the
//! timeout when it fires.
//!
//! Translated streams ([`Relay::translating`]): each well-formed upstream
//! event goes through a [`StreamTranslator`] instead of being copied, event
//! by event (nothing is buffered beyond the event being read); comment-only
//! events (keepalives) still pass, as they are for OpenAI-format clients and
//! as `event: ping` for Anthropic clients. Usage and the outcome are read
//! from the upstream's own events, so accounting records the true upstream
//! usage; appended error events are in the client's dialect.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};

use super::Dialect;
use super::error::{ErrorKind, stream_error_event};
use super::split::EventSplitter;
use super::sse::{DEFAULT_MAX_EVENT_BYTES, SseEvent, SseParser, WholeEvent, parse_whole};
use super::usage::{self, EventClass, Usage, UsageTracker};
use crate::translate::StreamTranslator;

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
    /// The stream ran for longer than its maximum duration.
    TooLong,
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
            RelayOutcome::TooLong => "max_duration",
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
    /// Upstream events that carried answer content (see
    /// [`UsageTracker::content_events`]).
    pub content_events: u64,
}

/// Callback receiving the summary; runs exactly once.
pub type OnFinish = Box<dyn FnOnce(RelaySummary) + Send>;

/// Time bounds of a relayed stream; zero disables one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Longest silence between two upstream frames.
    pub idle: Duration,
    /// Longest duration of the whole stream, from the relay's start.
    pub max_duration: Duration,
}

impl From<Duration> for StreamLimits {
    /// An idle timeout only.
    fn from(idle: Duration) -> Self {
        Self {
            idle,
            max_duration: Duration::ZERO,
        }
    }
}

/// Reading on after the client hung up, to learn the usage the upstream
/// reports at the end ([`Relay::draining_on_hangup`]).
#[derive(Clone, Debug)]
pub struct HangupDrain {
    /// Longest time spent reading.
    pub time: Duration,
    /// Most upstream bytes read.
    pub bytes: u64,
    /// When set, nothing is read: the summary is given at once (the process
    /// is cutting what is left at the end of its shutdown grace period).
    pub unless: Arc<AtomicBool>,
}

/// The task that reads a relay's upstream on after a hang-up.
type Drainer<B> = fn(Pin<Box<B>>, Draining);

/// What a drain carries on from the relay.
pub struct Draining {
    splitter: EventSplitter,
    tracker: UsageTracker,
    summary: RelaySummary,
    on_finish: OnFinish,
    limits: HangupDrain,
}

/// Relays an upstream SSE body; see the module docs.
pub struct Relay<B> {
    /// The upstream body; taken by a drain on hang-up.
    inner: Option<Pin<Box<B>>>,
    drain: Option<(Drainer<B>, HangupDrain)>,
    /// The client's dialect (appended error events).
    dialect: Dialect,
    /// Translates upstream events for the client; `None` forwards bytes.
    transform: Option<Box<dyn StreamTranslator>>,
    splitter: EventSplitter,
    parser: SseParser,
    tracker: UsageTracker,
    idle_timeout: Duration,
    idle: Option<Pin<Box<Sleep>>>,
    max_duration: Duration,
    /// Fires at the stream's maximum duration.
    deadline: Option<Pin<Box<Sleep>>>,
    /// When the last upstream frame arrived. The idle timer is moved to
    /// `last_frame_at + idle_timeout` only when it fires, not on every frame.
    last_frame_at: Instant,
    done: bool,
    saw_terminal: bool,
    saw_error: bool,
    malformed: u64,
    bytes: u64,
    first_byte_at: Option<Instant>,
    on_finish: Option<OnFinish>,
    /// A failure is handed to the caller instead of ending the client's
    /// stream with an in-band error (see [`Relay::handing_off`]).
    hand_off: bool,
    /// The in-band error event not sent because of `hand_off`.
    pending_error: Option<Bytes>,
    /// The client's stream was complete without the upstream's terminal
    /// event; its terminal event is appended (OpenAI Chat: `[DONE]`).
    appended_terminal: bool,
}

impl<B> Relay<B> {
    /// Wraps `body`. A zero limit disables it. Must be called inside a
    /// tokio runtime (the timers are tokio timers).
    pub fn new(
        body: B,
        dialect: Dialect,
        limits: impl Into<StreamLimits>,
        on_finish: OnFinish,
    ) -> Self {
        Self::build(body, dialect, dialect, None, limits.into(), on_finish)
    }

    /// Wraps an upstream `body` in `upstream` dialect whose events
    /// `translator` turns into the `client` dialect.
    pub fn translating(
        body: B,
        upstream: Dialect,
        translator: Box<dyn StreamTranslator>,
        client: Dialect,
        limits: impl Into<StreamLimits>,
        on_finish: OnFinish,
    ) -> Self {
        Self::build(
            body,
            upstream,
            client,
            Some(translator),
            limits.into(),
            on_finish,
        )
    }

    fn build(
        body: B,
        upstream: Dialect,
        client: Dialect,
        transform: Option<Box<dyn StreamTranslator>>,
        limits: StreamLimits,
        on_finish: OnFinish,
    ) -> Self {
        let idle_timeout = limits.idle;
        let idle = (!idle_timeout.is_zero()).then(|| Box::pin(tokio::time::sleep(idle_timeout)));
        let max_duration = limits.max_duration;
        let deadline =
            (!max_duration.is_zero()).then(|| Box::pin(tokio::time::sleep(max_duration)));
        Self {
            inner: Some(Box::pin(body)),
            drain: None,
            dialect: client,
            transform,
            splitter: EventSplitter::new(DEFAULT_MAX_EVENT_BYTES),
            parser: SseParser::default(),
            tracker: UsageTracker::new(upstream),
            idle_timeout,
            idle,
            max_duration,
            deadline,
            last_frame_at: Instant::now(),
            done: false,
            saw_terminal: false,
            saw_error: false,
            malformed: 0,
            bytes: 0,
            first_byte_at: None,
            on_finish: Some(on_finish),
            hand_off: false,
            pending_error: None,
            appended_terminal: false,
        }
    }

    /// When the client goes away before the end, the upstream is read on in
    /// the background (within `drain`'s time and bytes, nothing forwarded)
    /// until its terminal event, so the usage it reports at the end is
    /// known; the summary (`client_gone`) is given when that reading ends.
    pub fn draining_on_hangup(mut self, drain: HangupDrain) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.drain = Some((spawn_drain::<B>, drain));
        self
    }

    /// A broken, truncated or stalled upstream ends the relayed body without
    /// the in-band error event; the caller takes it with
    /// [`Relay::take_pending_error`] (to continue the stream from another
    /// candidate, or to send it after all).
    pub fn handing_off(mut self) -> Self {
        self.hand_off = true;
        self
    }

    /// The in-band error held back by [`Relay::handing_off`], if the stream
    /// failed.
    pub fn take_pending_error(&mut self) -> Option<Bytes> {
        self.pending_error.take()
    }

    /// Takes an upstream chunk; returns the events it completed that may go
    /// to the client (malformed ones removed), if any.
    fn accept(&mut self, data: &Bytes) -> Option<Bytes> {
        if data.is_empty() {
            return None;
        }
        self.bytes += data.len() as u64;
        if self.first_byte_at.is_none() {
            self.first_byte_at = Some(self.last_frame_at);
        }
        let split = self.splitter.push(data);
        self.malformed += split.oversized;
        if self.transform.is_some() {
            let mut buf = Vec::new();
            for raw in split.events {
                if let Some(events) = self.check_event(&raw, false) {
                    self.translate(&raw, &events, &mut buf);
                }
            }
            return (!buf.is_empty()).then(|| Bytes::from(buf));
        }
        // The events are forwarded as the one buffer they arrived in; only
        // when one is dropped are the others copied into a new one.
        let mut kept: Option<Vec<u8>> = None;
        let mut pos = 0;
        for raw in &split.events {
            let good = self.check_whole(raw);
            match (&mut kept, good) {
                (Some(k), true) => k.extend_from_slice(raw),
                (None, false) => kept = Some(split.all[..pos].to_vec()),
                _ => {}
            }
            pos += raw.len();
        }
        let out = kept.map_or(split.all, Bytes::from);
        (!out.is_empty()).then_some(out)
    }

    /// Checks one complete raw event of a relayed (untranslated) stream and
    /// records what it means; false when it is malformed and must be
    /// dropped. The event is read in place ([`parse_whole`]) and its data
    /// checked by [`UsageTracker::observe_data`] (see there which events are
    /// only validated); an event that is not UTF-8 goes through the
    /// incremental parser like the end of the stream does.
    fn check_whole(&mut self, raw: &[u8]) -> bool {
        let good = match parse_whole(raw) {
            WholeEvent::NoData => true,
            WholeEvent::Event(e) => {
                let class = self.tracker.observe_data(e.event, &e.data);
                self.classify(class)
            }
            WholeEvent::NotUtf8 => return self.check_event(raw, false).is_some(),
        };
        if !good {
            self.malformed += 1;
        }
        good
    }

    /// Translates one well-formed raw event into `buf`: its parsed events
    /// through the translator, or the raw bytes when it is only comments.
    fn translate(&mut self, raw: &[u8], events: &[SseEvent], buf: &mut Vec<u8>) {
        let Some(t) = self.transform.as_mut() else {
            return;
        };
        if events.is_empty() {
            // An upstream keep-alive: an Anthropic client's is `event: ping`
            // (its SDK does not see comments).
            if self.dialect == Dialect::Anthropic {
                buf.extend_from_slice(&super::keepalive_event(Dialect::Anthropic));
                return;
            }
            buf.extend_from_slice(raw);
            if !raw.ends_with(b"\n\n") && !raw.ends_with(b"\r\r") && !raw.ends_with(b"\r\n\r\n") {
                buf.extend_from_slice(b"\n\n");
            }
        }
        for e in events {
            t.event(e, buf);
        }
    }

    /// Parses one raw event and records what it means; `None` when it is
    /// malformed and must be dropped. `last` flushes an event that lacks its
    /// closing blank line (the end of the stream).
    fn check_event(&mut self, raw: &[u8], last: bool) -> Option<Vec<SseEvent>> {
        let mut items = self.parser.feed(raw);
        if last {
            items.extend(self.parser.finish());
        }
        let mut good = true;
        // Parsed events are kept only when a translator needs them.
        let keep = self.transform.is_some();
        let mut events = Vec::new();
        for item in items {
            match item {
                Ok(event) => {
                    good &= self.classify_event(&event);
                    if keep {
                        events.push(event);
                    }
                }
                Err(_) => good = false,
            }
        }
        if !good {
            self.malformed += 1;
            return None;
        }
        Some(events)
    }

    /// Records one parsed event; false when it is malformed.
    fn classify_event(&mut self, event: &SseEvent) -> bool {
        let class = self.tracker.observe(event);
        self.classify(class)
    }

    /// Records the class of one event; false when it is malformed.
    fn classify(&mut self, class: EventClass) -> bool {
        match class {
            EventClass::Data => true,
            EventClass::Terminal => {
                self.saw_terminal = true;
                true
            }
            EventClass::Error => {
                self.saw_error = true;
                true
            }
            EventClass::Malformed => false,
        }
    }

    fn summary(&self, outcome: RelayOutcome) -> RelaySummary {
        RelaySummary {
            usage: self.tracker.usage(),
            stop_reason: self.tracker.stop_reason().map(str::to_owned),
            outcome,
            malformed_events: self.malformed,
            bytes: self.bytes,
            first_byte_at: self.first_byte_at,
            content_events: self.tracker.content_events(),
        }
    }

    fn finish(&mut self, outcome: RelayOutcome) {
        if let Some(f) = self.on_finish.take() {
            f(self.summary(outcome));
        }
    }

    /// The client hung up: read on in the background if configured and the
    /// upstream has not ended, else give the summary now.
    fn hang_up(&mut self) {
        let Some(on_finish) = self.on_finish.take() else {
            return;
        };
        let summary = self.summary(RelayOutcome::ClientGone);
        let ended = self.done || self.saw_terminal || self.saw_error;
        match (self.drain.take(), self.inner.take()) {
            (Some((drainer, limits)), Some(body))
                if !ended
                    && !limits.unless.load(Ordering::SeqCst)
                    && tokio::runtime::Handle::try_current().is_ok() =>
            {
                let draining = Draining {
                    splitter: std::mem::replace(
                        &mut self.splitter,
                        EventSplitter::new(DEFAULT_MAX_EVENT_BYTES),
                    ),
                    tracker: std::mem::replace(
                        &mut self.tracker,
                        UsageTracker::new(Dialect::OpenAI),
                    ),
                    summary,
                    on_finish,
                    limits,
                };
                drainer(body, draining);
            }
            _ => on_finish(summary),
        }
    }

    /// Ends the stream with `outcome`: sends `prefix` (the rest of the
    /// upstream stream) and, when `error` is given, an in-band error event.
    fn end(
        &mut self,
        outcome: RelayOutcome,
        prefix: Option<Bytes>,
        error: Option<(ErrorKind, &str)>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.finish(outcome);
        self.done = true;
        let held = self.hand_off && outcome != RelayOutcome::TooLong;
        let event = error.map(|(kind, message)| {
            let mut own = Vec::new();
            let handled = self
                .transform
                .as_mut()
                .is_some_and(|t| t.error_event(kind, message, &mut own));
            if handled {
                Bytes::from(own)
            } else {
                stream_error_event(self.dialect, kind, message)
            }
        });
        let event = if held {
            self.pending_error = event;
            None
        } else {
            event
        };
        let tail = match (prefix, event) {
            (None, None) => return Poll::Ready(None),
            (Some(p), None) => p,
            (None, Some(e)) => e,
            (Some(p), Some(e)) => {
                let mut t = Vec::with_capacity(p.len() + e.len());
                t.extend_from_slice(&p);
                t.extend_from_slice(&e);
                Bytes::from(t)
            }
        };
        Poll::Ready(Some(Ok(Frame::data(tail))))
    }

    /// The upstream ended: a last event without its blank line is checked
    /// and, if well formed, sent closed; then completed, error or truncated.
    fn upstream_ended(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut prefix = None;
        if let Some(rest) = self.splitter.finish()
            && let Some(events) = self.check_event(&rest, true)
        {
            if self.transform.is_some() {
                let mut buf = Vec::new();
                self.translate(&rest, &events, &mut buf);
                prefix = (!buf.is_empty()).then(|| Bytes::from(buf));
            } else {
                let mut closed = rest.to_vec();
                closed.extend_from_slice(b"\n\n");
                prefix = Some(Bytes::from(closed));
            }
        }
        // A translated stream may be complete for the client before the
        // upstream's terminal event (OpenAI usage known, `[DONE]` missing).
        let client_complete = self.transform.as_ref().is_some_and(|t| t.finished());
        // A Chat Completions stream relayed as it is, that ends cleanly after
        // every choice got its finish reason, is complete without `[DONE]`:
        // the client gets the `[DONE]` it expects, never an error.
        let chat_complete = !self.saw_terminal
            && self.dialect == Dialect::OpenAI
            && self
                .transform
                .as_ref()
                .is_none_or(|t| t.passes_chat_through())
            && self.tracker.all_choices_finished();
        if self.saw_error {
            self.end(RelayOutcome::UpstreamError, prefix, None)
        } else if chat_complete {
            self.appended_terminal = true;
            let mut tail = prefix.map(|p| p.to_vec()).unwrap_or_default();
            tail.extend_from_slice(b"data: [DONE]\n\n");
            self.end(RelayOutcome::Completed, Some(Bytes::from(tail)), None)
        } else if self.saw_terminal || client_complete {
            self.end(RelayOutcome::Completed, prefix, None)
        } else {
            self.end(
                RelayOutcome::Truncated,
                prefix,
                Some((
                    ErrorKind::Api,
                    "upstream stream ended before the response was complete",
                )),
            )
        }
    }
}

impl<B> Relay<B> {
    /// Whether the upstream has been silent for the idle timeout. The timer
    /// was set when the relay started and is moved forward lazily: when it
    /// fires after frames arrived, it is reset to the last frame's time plus
    /// the timeout (and registered again).
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(sleep) = self.idle.as_mut() else {
            return false;
        };
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = self.last_frame_at + self.idle_timeout;
            if deadline <= sleep.deadline() {
                return true;
            }
            sleep.as_mut().reset(deadline);
        }
    }
}

impl<B> Drop for Relay<B> {
    fn drop(&mut self) {
        self.hang_up();
    }
}

/// Spawns the reading of `body` on after a hang-up (see [`HangupDrain`]).
fn spawn_drain<B>(body: Pin<Box<B>>, d: Draining)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    tokio::spawn(drain(body, d));
}

/// Reads `body` until its terminal event, an error, or the drain's bounds;
/// then gives the summary with the usage seen in all.
async fn drain<B>(mut body: Pin<Box<B>>, mut d: Draining)
where
    B: Body<Data = Bytes>,
{
    use http_body_util::BodyExt as _;
    let deadline = Instant::now() + d.limits.time;
    let mut read = 0u64;
    'read: while read < d.limits.bytes {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            _ => break,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read += data.len() as u64;
        for raw in d.splitter.push(&data).events {
            if let WholeEvent::Event(e) = parse_whole(&raw)
                && matches!(
                    d.tracker.observe_data(e.event, &e.data),
                    EventClass::Terminal | EventClass::Error
                )
            {
                break 'read;
            }
        }
    }
    d.summary.usage = d.tracker.usage();
    d.summary.content_events = d.tracker.content_events();
    if d.summary.stop_reason.is_none() {
        d.summary.stop_reason = d.tracker.stop_reason().map(str::to_owned);
    }
    (d.on_finish)(d.summary);
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
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            let secs = this.max_duration.as_secs_f64();
            let message =
                format!("stream ended by the gateway after its maximum duration of {secs}s");
            return this.end(
                RelayOutcome::TooLong,
                None,
                Some((ErrorKind::Timeout, &message)),
            );
        }
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.last_frame_at = Instant::now();
                    let Some(data) = frame.data_ref() else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    let data = data.clone();
                    if let Some(out) = this.accept(&data) {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                    // Only part of an event so far: keep reading.
                }
                Poll::Ready(Some(Err(e))) => {
                    let e: BoxError = e.into();
                    tracing::debug!(error = %e, "upstream stream failed");
                    return if this.saw_error {
                        this.end(RelayOutcome::UpstreamError, None, None)
                    } else if this.saw_terminal {
                        this.end(RelayOutcome::Completed, None, None)
                    } else {
                        this.end(
                            RelayOutcome::UpstreamError,
                            None,
                            Some((
                                ErrorKind::Api,
                                "upstream connection failed during the stream",
                            )),
                        )
                    };
                }
                Poll::Ready(None) => return this.upstream_ended(),
                Poll::Pending => {
                    if !this.idle_expired(cx) {
                        return Poll::Pending;
                    }
                    return if this.saw_error {
                        this.end(RelayOutcome::UpstreamError, None, None)
                    } else if this.saw_terminal {
                        this.end(RelayOutcome::Completed, None, None)
                    } else {
                        let secs = this.idle_timeout.as_secs_f64();
                        let message = format!("upstream stream stalled: no data for {secs}s");
                        this.end(
                            RelayOutcome::Stalled,
                            None,
                            Some((ErrorKind::Timeout, &message)),
                        )
                    };
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

/// Usage and stop reason of a whole answer whatever its declared content
/// type: a JSON answer, or an event stream received whole (an upstream
/// that labels its stream `application/json` or `text/plain`). `None` when
/// neither carries usage.
pub fn usage_from_whole_body(dialect: Dialect, body: &[u8]) -> Option<(Usage, Option<String>)> {
    if let Some(found) = usage::from_json_response(dialect, body) {
        return Some(found);
    }
    let mut splitter = EventSplitter::new(DEFAULT_MAX_EVENT_BYTES);
    let mut tracker = UsageTracker::new(dialect);
    let split = splitter.push(body);
    for raw in split
        .events
        .iter()
        .map(|e| e.to_vec())
        .chain(splitter.finish().map(|b| b.to_vec()))
    {
        if let WholeEvent::Event(e) = parse_whole(&raw) {
            tracker.observe_data(e.event, &e.data);
        }
    }
    tracker
        .saw_usage()
        .then(|| (tracker.usage(), tracker.stop_reason().map(str::to_owned)))
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
