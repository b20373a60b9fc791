//! The streaming body that translates an upstream SSE answer (Chat
//! Completions or Anthropic Messages) into a Responses event stream, event
//! by event: each upstream event is parsed as soon as it is complete and its
//! translation is sent at once; nothing is buffered whole.
//!
//! How it ends (the same outcomes as [`crate::wire::relay`]):
//!
//! | upstream                                 | client gets                      | outcome          |
//! |------------------------------------------|----------------------------------|------------------|
//! | terminal event (`[DONE]`/`message_stop`) | … `response.completed`/`.incomplete` | `completed`  |
//! | in-stream error                          | … `response.failed`              | `upstream_error` |
//! | body error mid-stream                    | … `response.failed`              | `upstream_error` |
//! | end without terminal event               | completed if a stop reason was seen, else `response.failed` | `completed` / `truncated` |
//! | silent for the idle timeout              | … `response.failed`              | `stalled`        |
//! | client drops the body first              | —                                | `client_gone`    |

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};

use super::emit::ResponsesEvent;
use super::{ChatStreamTranslator, MessagesStreamTranslator};
use crate::wire::relay::{BoxError, OnFinish, RelayOutcome, RelaySummary};
use crate::wire::sse::{SseEvent, SseParser};
use crate::wire::usage::Usage;

/// The state machine for the upstream's format.
#[derive(Debug)]
pub enum StreamTranslator {
    /// The upstream speaks Chat Completions.
    Chat(ChatStreamTranslator),
    /// The upstream speaks Anthropic Messages.
    Messages(MessagesStreamTranslator),
}

impl StreamTranslator {
    fn on_event(&mut self, e: &SseEvent) -> Vec<ResponsesEvent> {
        match self {
            StreamTranslator::Chat(t) => t.on_event(e),
            StreamTranslator::Messages(t) => t.on_event(e),
        }
    }

    fn on_end(&mut self) -> Vec<ResponsesEvent> {
        match self {
            StreamTranslator::Chat(t) => t.on_end(),
            StreamTranslator::Messages(t) => t.on_end(),
        }
    }

    fn on_error(&mut self, code: &str, message: &str) -> Vec<ResponsesEvent> {
        match self {
            StreamTranslator::Chat(t) => t.on_error(code, message),
            StreamTranslator::Messages(t) => t.on_error(code, message),
        }
    }

    fn usage(&self) -> Usage {
        match self {
            StreamTranslator::Chat(t) => t.usage(),
            StreamTranslator::Messages(t) => t.usage(),
        }
    }

    fn finished(&self) -> bool {
        match self {
            StreamTranslator::Chat(t) => t.finished(),
            StreamTranslator::Messages(t) => t.finished(),
        }
    }
}

/// Translates an upstream SSE body into Responses SSE; see the module docs.
pub struct ResponsesStream<B> {
    inner: Pin<Box<B>>,
    parser: SseParser,
    translator: StreamTranslator,
    idle_timeout: Duration,
    idle: Option<Pin<Box<Sleep>>>,
    done: bool,
    failed: bool,
    bytes: u64,
    first_byte_at: Option<Instant>,
    on_finish: Option<OnFinish>,
}

impl<B> ResponsesStream<B> {
    /// Wraps `body`. An `idle_timeout` of zero disables stall detection.
    /// Must be called inside a tokio runtime.
    pub fn new(
        body: B,
        translator: StreamTranslator,
        idle_timeout: Duration,
        on_finish: OnFinish,
    ) -> Self {
        let idle = (!idle_timeout.is_zero()).then(|| Box::pin(tokio::time::sleep(idle_timeout)));
        Self {
            inner: Box::pin(body),
            parser: SseParser::default(),
            translator,
            idle_timeout,
            idle,
            done: false,
            failed: false,
            bytes: 0,
            first_byte_at: None,
            on_finish: Some(on_finish),
        }
    }

    fn encode(&mut self, events: Vec<ResponsesEvent>, out: &mut BytesMut) {
        for e in events {
            if e.name() == Some("response.failed") {
                self.failed = true;
            }
            out.extend_from_slice(&e.to_sse());
        }
    }

    fn finish(&mut self, outcome: RelayOutcome) {
        if let Some(f) = self.on_finish.take() {
            f(RelaySummary {
                usage: self.translator.usage(),
                stop_reason: None,
                outcome,
                malformed_events: 0,
                bytes: self.bytes,
                first_byte_at: self.first_byte_at,
            });
        }
    }

    fn outcome_if_finished(&self, otherwise: RelayOutcome) -> RelayOutcome {
        match (self.translator.finished(), self.failed) {
            (true, false) => RelayOutcome::Completed,
            (true, true) if otherwise == RelayOutcome::Completed => RelayOutcome::UpstreamError,
            _ => otherwise,
        }
    }

    fn end(
        &mut self,
        out: BytesMut,
        outcome: RelayOutcome,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        self.finish(outcome);
        if out.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
        }
    }
}

impl<B> Drop for ResponsesStream<B> {
    fn drop(&mut self) {
        self.finish(RelayOutcome::ClientGone);
    }
}

impl<B> Body for ResponsesStream<B>
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
        loop {
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(idle) = this.idle.as_mut() {
                        idle.as_mut().reset(Instant::now() + this.idle_timeout);
                    }
                    let Some(data) = frame.data_ref().filter(|d| !d.is_empty()) else {
                        continue;
                    };
                    this.bytes += data.len() as u64;
                    this.first_byte_at.get_or_insert_with(Instant::now);
                    let mut out = BytesMut::new();
                    for item in this.parser.feed(data) {
                        if let Ok(event) = item {
                            let events = this.translator.on_event(&event);
                            this.encode(events, &mut out);
                        }
                    }
                    if this.translator.finished() {
                        let outcome = this.outcome_if_finished(RelayOutcome::Completed);
                        return this.end(out, outcome);
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let e: BoxError = e.into();
                    tracing::debug!(error = %e, "upstream stream failed");
                    let mut out = BytesMut::new();
                    let events = this.translator.on_error(
                        "upstream_error",
                        "upstream connection failed during the stream",
                    );
                    this.encode(events, &mut out);
                    return this.end(out, RelayOutcome::UpstreamError);
                }
                Poll::Ready(None) => {
                    let mut out = BytesMut::new();
                    if let Some(Ok(event)) = this.parser.finish() {
                        let events = this.translator.on_event(&event);
                        this.encode(events, &mut out);
                    }
                    let events = this.translator.on_end();
                    this.encode(events, &mut out);
                    let outcome = if this.failed {
                        RelayOutcome::Truncated
                    } else {
                        RelayOutcome::Completed
                    };
                    let outcome = this.outcome_if_finished(outcome);
                    return this.end(out, outcome);
                }
                Poll::Pending => {
                    let expired = this
                        .idle
                        .as_mut()
                        .is_some_and(|s| s.as_mut().poll(cx).is_ready());
                    if !expired {
                        return Poll::Pending;
                    }
                    let secs = this.idle_timeout.as_secs_f64();
                    let message = format!("upstream stream stalled: no data for {secs}s");
                    let mut out = BytesMut::new();
                    let events = this.translator.on_error("timeout", &message);
                    this.encode(events, &mut out);
                    return this.end(out, RelayOutcome::Stalled);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http_body_util::BodyExt;

    use super::*;
    use crate::translate::responses::ResponseContext;

    fn body_of(
        chunks: Vec<&'static str>,
    ) -> impl Body<Data = Bytes, Error = std::convert::Infallible> {
        http_body_util::StreamBody::new(futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes())))),
        ))
    }

    async fn run(chunks: Vec<&'static str>, chat: bool) -> (String, RelaySummary) {
        let summary = Arc::new(Mutex::new(None));
        let s = summary.clone();
        let translator = if chat {
            StreamTranslator::Chat(ChatStreamTranslator::new(ResponseContext::default(), 1))
        } else {
            StreamTranslator::Messages(MessagesStreamTranslator::new(ResponseContext::default(), 1))
        };
        let stream = ResponsesStream::new(
            body_of(chunks),
            translator,
            Duration::from_secs(5),
            Box::new(move |sum| *s.lock().unwrap() = Some(sum)),
        );
        let bytes = stream.collect().await.unwrap().to_bytes();
        let summary = summary.lock().unwrap().take().unwrap();
        (String::from_utf8(bytes.to_vec()).unwrap(), summary)
    }

    #[tokio::test]
    async fn chat_stream_split_anywhere_completes_with_usage() {
        let (text, sum) = run(
            vec![
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n",
                "\ndata: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"comp",
                "letion_tokens\":2}}\n\ndata: [DONE]\n\n",
            ],
            true,
        )
        .await;
        assert!(text.starts_with("event: response.created\n"));
        assert!(text.contains("event: response.output_text.delta\n"));
        assert!(text.ends_with("\n\n") && text.contains("event: response.completed\n"));
        assert_eq!(sum.outcome, RelayOutcome::Completed);
        assert_eq!((sum.usage.input_tokens, sum.usage.output_tokens), (3, 2));
    }

    #[tokio::test]
    async fn truncated_messages_stream_fails_in_band() {
        let (text, sum) = run(
            vec!["event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":4}}}\n\n"],
            false,
        )
        .await;
        assert!(text.contains("event: response.failed\n"));
        assert!(!text.contains("response.completed"));
        assert_eq!(sum.outcome, RelayOutcome::Truncated);
        assert_eq!(sum.usage.input_tokens, 4);
    }

    #[tokio::test]
    async fn upstream_error_event_is_an_upstream_error() {
        let (text, sum) = run(
            vec!["event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"],
            false,
        )
        .await;
        assert!(text.contains("\"code\":\"overloaded_error\""));
        assert_eq!(sum.outcome, RelayOutcome::UpstreamError);
    }

    #[tokio::test(start_paused = true)]
    async fn stall_fails_the_response() {
        let body = http_body_util::StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >());
        let summary = Arc::new(Mutex::new(None));
        let s = summary.clone();
        let stream = ResponsesStream::new(
            body,
            StreamTranslator::Chat(ChatStreamTranslator::new(ResponseContext::default(), 1)),
            Duration::from_secs(2),
            Box::new(move |sum| *s.lock().unwrap() = Some(sum)),
        );
        let bytes = stream.collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&bytes).contains("stalled"));
        assert_eq!(
            summary.lock().unwrap().as_ref().unwrap().outcome,
            RelayOutcome::Stalled
        );
    }
}
