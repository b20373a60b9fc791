//! Stage: respond, for streams that may outlive their first candidate.
//!
//! [`relay`] gives a started stream to the client. When it cannot be
//! continued (the route says `Off`, no candidate is left, a Responses
//! client) it is the plain relay of [`super::respond`]. Otherwise the body
//! is a [`ClientStream`]: the same relay, handing its failures back instead
//! of ending with an in-band error, while what the client received is
//! followed ([`Sent`]); when the upstream breaks or stalls and the answer
//! can be continued ([`super::continuation`]), the chain is walked on and
//! the new stream is joined to the old one ([`Splicer`]). Otherwise (or when
//! no candidate continues, or the continuation diverges) the client gets
//! the in-band error it would have got: never a truncated answer that looks
//! complete.
//!
//! [`held`] is the response of a stream still waiting for its first content
//! after one keep-alive interval: 200 and event-stream headers at once, the
//! client's own keep-alives ([`super::keepalive`]) every interval while the
//! chain is walked, then the stream, or an in-band error if nothing answers.
//! Continuations are kept alive the same way.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::Exchange;
use super::attempt::{Chain, Next, Purpose, Started};
use super::continuation::sent::Sent;
use super::continuation::splice::Splicer;
use super::continuation::{self, Strategy};
use super::hold::Prefixed;
use super::keepalive::KeepAlive;
use super::respond;
use crate::metrics::ContinuationLabels;
use crate::response::{self, BoxError, ResponseBody};
use crate::routing::Continuation;
use crate::runtime::{ApiFormat, BackendRuntime};
use crate::state::AppState;
use crate::upstream::UpstreamBody;
use crate::wire::relay::{Relay, RelayOutcome, RelaySummary};
use crate::wire::usage::Usage;
use crate::wire::{self, Dialect, ErrorKind};

/// A walk of the chain in progress, owning it.
pub type Walk = Pin<Box<dyn Future<Output = (Chain, Next)> + Send>>;

/// Whether streams of `x` may be continued at all.
fn continuable(x: &Exchange) -> bool {
    x.route().retry.continuation != Continuation::Off
        && matches!(x.format, ApiFormat::ChatCompletions | ApiFormat::Messages)
}

/// The client's response for a started stream.
pub fn relay(chain: Chain, started: Started) -> Response<ResponseBody> {
    let x = chain.exchange().clone();
    if !continuable(&x) || !chain.has_more() {
        return respond::relay_stream(chain.state(), &x, started);
    }
    let upstream_headers = started.parts.headers.clone();
    let state = chain.state().clone();
    let interval = state.stream_keepalive;
    let mut body = ClientStream::new(state, x, Phase::Done);
    body.chain = Some(chain);
    body.start(started);
    let dialect = body.dialect;
    let body = KeepAlive::new(body, dialect, interval);
    respond::stream_response(&upstream_headers, body.boxed_unsync())
}

/// The client's response for a stream still held after the keep-alive
/// interval: committed now, kept alive while `walk` goes on.
pub fn held(x: Arc<Exchange>, state: &Arc<AppState>, walk: Walk) -> Response<ResponseBody> {
    let dialect = x.format.dialect();
    let body = ClientStream::new(state.clone(), x, Phase::Waiting(walk));
    // The client has heard nothing since it asked: a keep-alive right away.
    let body = KeepAlive::new(body, dialect, state.stream_keepalive).first_at(Instant::now());
    let body = super::coalesce::Coalesce::new(body.boxed_unsync());
    let mut resp = Response::new(body.boxed_unsync());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response::mark_streaming(&mut resp);
    resp
}

/// Where a relay leaves its summary. The summary can come after the relay
/// was dropped (it reads on after a hang-up, see
/// [`crate::wire::relay::Relay::draining_on_hangup`]): then it goes to
/// `then`, left by the stream that is gone.
#[derive(Default)]
struct Handoff {
    summary: Option<RelaySummary>,
    then: Option<Box<dyn FnOnce(RelaySummary) + Send>>,
}

type Slot = Arc<Mutex<Handoff>>;

fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Handoff> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

enum Phase {
    /// Waiting for the chain (a first stream, or a continuation).
    Waiting(Walk),
    /// Relaying one upstream stream.
    Relaying {
        relay: Box<Relay<Prefixed<UpstreamBody>>>,
        backend: Arc<BackendRuntime>,
        slot: Slot,
        splice: Option<Box<(Splicer, Strategy)>>,
    },
    /// Forwarding a finished answer's body as it is.
    Forwarding(ResponseBody),
    /// The last bytes, then the end.
    Ending(Option<Bytes>),
    /// Over.
    Done,
}

/// The client's body of a stream that can be continued or was held.
struct ClientStream {
    state: Arc<AppState>,
    x: Arc<Exchange>,
    dialect: Dialect,
    phase: Phase,
    chain: Option<Chain>,
    sent: Sent,
    /// Content (not only keep-alives) reached the client.
    content_sent: bool,
    /// The in-band error of the stream that died, if a continuation fails.
    pending_error: Option<Bytes>,
    /// The backend whose answer the client has (last one that streamed).
    backend: Option<Arc<BackendRuntime>>,
    /// The model that backend answered as.
    model: String,
    usage: Usage,
    /// Content events of every relay so far.
    content_events: u64,
    first_byte_at: Option<Instant>,
    outcome: &'static str,
    accounted: bool,
}

impl ClientStream {
    fn new(state: Arc<AppState>, x: Arc<Exchange>, phase: Phase) -> Self {
        let dialect = x.format.dialect();
        Self {
            state,
            dialect,
            sent: Sent::new(dialect),
            x,
            phase,
            chain: None,
            content_sent: false,
            pending_error: None,
            backend: None,
            model: String::new(),
            usage: Usage::default(),
            content_events: 0,
            first_byte_at: None,
            outcome: "client_gone",
            accounted: false,
        }
    }

    /// Starts relaying a stream (joined to what was sent when continuing).
    fn start(&mut self, started: Started) {
        let slot: Slot = Arc::default();
        let sink = slot.clone();
        let on_finish = Box::new(move |summary: RelaySummary| {
            let then = {
                let mut h = lock(&sink);
                match h.then.take() {
                    Some(then) => Some(then),
                    None => {
                        h.summary = Some(summary.clone());
                        None
                    }
                }
            };
            if let Some(then) = then {
                then(summary);
            }
        });
        let backend = started.backend.clone();
        let relay = respond::build_relay(
            &self.state,
            &self.x,
            &backend,
            started.prepared,
            started.body,
            on_finish,
        )
        .handing_off();
        let splice = match started.strategy {
            Some(strategy) if self.content_sent => Some(Box::new((
                Splicer::new(self.dialect, &self.sent, &strategy),
                strategy,
            ))),
            _ => None,
        };
        self.backend = Some(backend.clone());
        self.model = started.model;
        self.phase = Phase::Relaying {
            relay: Box::new(relay),
            backend,
            slot,
            splice,
        };
    }

    /// What the walk ended with.
    fn walked(&mut self, chain: Chain, next: Next) {
        let continuing = self.content_sent;
        self.chain = Some(chain);
        match next {
            Next::Stream(started) => self.start(*started),
            Next::Answer(resp) if !continuing && is_event_stream(&resp) => {
                // An event stream given as a whole answer: forward it as it is.
                self.outcome = "completed";
                self.phase = Phase::Forwarding(resp.into_body());
            }
            Next::Answer(resp) | Next::Failed(Ok(resp)) => {
                let event = self.error_from_answer(resp);
                self.fail(event);
            }
            Next::Failed(Err(e)) => {
                if !continuing {
                    crate::pipeline::reject::record(
                        &self.state,
                        &self.x.route().id,
                        self.team(),
                        &e,
                    );
                }
                let event = wire::stream_error_event(self.dialect, e.kind(), &e.client_message());
                self.fail(event);
            }
        }
    }

    fn team(&self) -> Option<&str> {
        self.x.team.as_ref().map(|t| t.label.as_str())
    }

    /// Ends the stream with an error: the one of the stream that died when
    /// continuing, else `event`.
    fn fail(&mut self, event: Bytes) {
        if self.content_sent {
            self.count_continuation("none", "failed");
        }
        let event = self.pending_error.take().unwrap_or(event);
        self.outcome = "upstream_error";
        self.phase = Phase::Ending(Some(event));
    }

    /// The client-dialect error event for a non-stream answer (an upstream
    /// error returned as it is).
    fn error_from_answer(&self, resp: Response<ResponseBody>) -> Bytes {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .now_or_never()
            .and_then(Result::ok)
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        // The upstream's own error (already in the client's dialect) goes as it is.
        if let Some(event) = wire::error::body_as_stream_event(self.dialect, &body) {
            return event;
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("upstream answered {}", status.as_u16()));
        let kind = match status.as_u16() {
            400 | 404 | 413 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            429 => ErrorKind::RateLimited,
            503 => ErrorKind::Unavailable,
            504 => ErrorKind::Timeout,
            529 => ErrorKind::Overloaded,
            s if (200..300).contains(&s) => ErrorKind::Api,
            _ => ErrorKind::Api,
        };
        wire::stream_error_event(self.dialect, kind, &message)
    }

    /// A relay ended; `error` is its held-back in-band error if it failed.
    fn relay_ended(
        &mut self,
        backend: &Arc<BackendRuntime>,
        summary: Option<RelaySummary>,
        error: Option<Bytes>,
        strategy: Option<Strategy>,
    ) {
        if let Some(s) = &summary {
            respond::count_malformed(&self.state.metrics, &backend.id, s);
            self.absorb(s);
        }
        let Some(error) = error else {
            self.outcome = summary.as_ref().map_or("completed", |s| s.outcome.label());
            if let Some(strategy) = &strategy {
                self.count_continuation(strategy.label(), "completed");
            }
            self.phase = Phase::Done;
            return;
        };
        // The stream died midway: continue it when that is possible.
        let reason = match summary.as_ref().map(|s| s.outcome) {
            Some(RelayOutcome::Stalled) => "stream_stalled",
            Some(RelayOutcome::Truncated) => "stream_truncated",
            _ => "stream_broken",
        };
        self.pending_error = Some(error.clone());
        let setting = self.x.route().retry.continuation;
        let can = continuable(&self.x) && self.sent.continuable();
        match self.chain.take() {
            Some(chain) if can && chain.has_more() => {
                chain.stream_failed(backend, reason);
                let plan = continuation::Plan {
                    text: self.sent.text.clone(),
                    allow_restart: setting == Continuation::Auto,
                };
                let mut chain = chain;
                self.phase = Phase::Waiting(Box::pin(async move {
                    let next = chain.next(&Purpose::Continue(plan)).await;
                    (chain, next)
                }));
            }
            chain => {
                if let Some(chain) = &chain {
                    chain.stream_failed(backend, reason);
                }
                self.chain = chain;
                self.outcome = summary
                    .as_ref()
                    .map_or("upstream_error", |s| s.outcome.label());
                self.pending_error = None;
                self.phase = Phase::Ending(Some(error));
            }
        }
    }

    fn count_continuation(&self, strategy: &'static str, result: &'static str) {
        self.state
            .metrics
            .continuations
            .get_or_create(&ContinuationLabels {
                route: self.x.route().id.clone(),
                strategy,
                result,
            })
            .inc();
    }

    /// Adds what one relay saw.
    fn absorb(&mut self, s: &RelaySummary) {
        self.usage.add(&s.usage);
        self.content_events += s.content_events;
        if self.first_byte_at.is_none() {
            self.first_byte_at = s.first_byte_at;
        }
    }

    /// Records the request once: usage of every stream that served it, on
    /// the backend (and model) that served last.
    fn account(&mut self) {
        if let Some(record) = self.recorder() {
            record(None);
        }
    }

    /// What records the request, given the summary of a relay still
    /// reading on (`None` once every relay reported); `None` when already
    /// recorded or nothing streamed (then it was recorded as a rejection or
    /// upstream error).
    fn recorder(&mut self) -> Option<impl FnOnce(Option<RelaySummary>) + Send + 'static> {
        if self.accounted {
            return None;
        }
        self.accounted = true;
        let backend = self.backend.clone()?;
        let attempts = self.chain.as_ref().map_or(1, Chain::attempts);
        let acct = respond::accounting(&self.state, &self.x, &backend, &self.model, 200, attempts);
        let (mut usage, mut events, mut first) =
            (self.usage, self.content_events, self.first_byte_at);
        let outcome = self.outcome;
        Some(move |last: Option<RelaySummary>| {
            if let Some(s) = last {
                usage.add(&s.usage);
                events += s.content_events;
                first = first.or(s.first_byte_at);
            }
            if let Some(at) = first {
                acct.first_byte(at);
            }
            acct.finish_stream(&usage, events, outcome);
        })
    }

    fn emit(&mut self, data: Bytes) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !data.is_empty() {
            self.content_sent = true;
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

fn is_event_stream(resp: &Response<ResponseBody>) -> bool {
    resp.status().is_success()
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        // A relay still running reports what it saw (`client_gone`) through
        // its slot when it is dropped, at once or after reading on for the
        // usage: drop it first, then record now or when it reports.
        if let Phase::Relaying { slot, .. } = &self.phase {
            let slot = slot.clone();
            self.phase = Phase::Done;
            let Some(record) = self.recorder() else {
                return;
            };
            let mut h = lock(&slot);
            match h.summary.take() {
                Some(s) => {
                    drop(h);
                    record(Some(s));
                }
                None => h.then = Some(Box::new(move |s| record(Some(s)))),
            }
            return;
        }
        self.account();
    }
}

impl Body for ClientStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match &mut this.phase {
                // Keep-alives while waiting come from the [`KeepAlive`] around.
                Phase::Waiting(walk) => match walk.as_mut().poll(cx) {
                    Poll::Ready((chain, next)) => this.walked(chain, next),
                    Poll::Pending => return Poll::Pending,
                },
                Phase::Relaying {
                    relay,
                    backend,
                    slot,
                    splice,
                } => match Pin::new(relay.as_mut()).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        let Ok(mut data) = frame.into_data() else {
                            continue;
                        };
                        if let Some(joint) = splice {
                            let (splicer, strategy) = &mut **joint;
                            match splicer.splice(&data) {
                                Ok(out) => data = Bytes::from(out),
                                Err(_) => {
                                    tracing::warn!(
                                        route = %this.x.route().id,
                                        backend = %backend.id,
                                        "the restarted answer does not extend what was sent; ending the stream with an error"
                                    );
                                    let label = strategy.label();
                                    this.count_continuation(label, "diverged");
                                    let event = this.pending_error.take().unwrap_or_else(|| {
                                        wire::stream_error_event(
                                            this.dialect,
                                            ErrorKind::Api,
                                            "upstream stream ended before the response was complete",
                                        )
                                    });
                                    this.outcome = "diverged";
                                    this.phase = Phase::Ending(Some(event));
                                    continue;
                                }
                            }
                        }
                        if data.is_empty() {
                            continue;
                        }
                        this.sent.observe(&data);
                        return this.emit(data);
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        let summary = lock(slot).summary.take();
                        let error = relay.take_pending_error();
                        let backend = backend.clone();
                        let pending_splice = splice.as_ref().is_some_and(|j| j.0.pending());
                        let strategy = splice.take().map(|j| j.1);
                        if pending_splice && error.is_none() {
                            // Ended before reproducing what was sent.
                            if let Some(s) = &strategy {
                                this.count_continuation(s.label(), "diverged");
                            }
                            let event = this.pending_error.take().unwrap_or_default();
                            this.outcome = "diverged";
                            this.phase = Phase::Ending(Some(event));
                            continue;
                        }
                        this.relay_ended(&backend, summary, error, strategy);
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Phase::Forwarding(body) => match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(None) => this.phase = Phase::Done,
                    other => return other,
                },
                Phase::Ending(bytes) => {
                    let last = bytes.take();
                    this.phase = Phase::Done;
                    if let Some(b) = last.filter(|b| !b.is_empty()) {
                        return this.emit(b);
                    }
                }
                Phase::Done => {
                    this.account();
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }
}
