//! Keep-alives on the streams the gateway answers (issue 16, defect 5).
//!
//! A model may think for longer than a client waits in silence (Claude
//! Code's stall watchdog fires after about 20 s without bytes). So a
//! streamed answer never leaves the client without a byte for longer than
//! the keep-alive interval (`--stream-keepalive-interval`, default 10 s):
//! when the body has produced nothing for that long — while the request is
//! held for its first token, while a stream is continued on another
//! backend, or while a (translated) upstream is silent — [`KeepAlive`]
//! sends the client's own keep-alive ([`crate::wire::keepalive_event`]:
//! `event: ping` for Messages, an SSE comment for Chat and Responses).
//!
//! The wrapped bodies yield whole events per frame, so a keep-alive never
//! lands inside an event. Anything the body yields (content, or the
//! upstream's own pings, which pass through) restarts the interval: an
//! upstream that pings often enough is never doubled.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::response::BoxError;
use crate::wire::{Dialect, keepalive_event};

/// Default interval between keep-alives on a silent stream.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// A streamed body with keep-alives in its silences; see the module docs.
pub struct KeepAlive<B> {
    inner: B,
    event: Bytes,
    interval: Duration,
    /// `None`: keep-alives off (a zero interval).
    timer: Option<Pin<Box<Sleep>>>,
    ended: bool,
}

impl<B> KeepAlive<B> {
    /// `inner` with a keep-alive for a `dialect` client after every
    /// `interval` of silence; a zero interval sends none.
    pub fn new(inner: B, dialect: Dialect, interval: Duration) -> Self {
        let timer = (!interval.is_zero()).then(|| Box::pin(tokio::time::sleep(interval)));
        Self {
            inner,
            event: keepalive_event(dialect),
            interval,
            timer,
            ended: false,
        }
    }

    /// The first keep-alive at `at` instead of one interval from now (a
    /// client that has already waited).
    pub fn first_at(mut self, at: Instant) -> Self {
        if let Some(t) = &mut self.timer {
            t.as_mut().reset(at);
        }
        self
    }

    fn restart(&mut self) {
        if let Some(t) = &mut self.timer {
            t.as_mut().reset(Instant::now() + self.interval);
        }
    }
}

impl<B> Body for KeepAlive<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => {
                if frame
                    .as_ref()
                    .ok()
                    .and_then(Frame::data_ref)
                    .is_some_and(|d| !d.is_empty())
                {
                    this.restart();
                }
                Poll::Ready(Some(frame))
            }
            Poll::Pending => {
                let Some(timer) = &mut this.timer else {
                    return Poll::Pending;
                };
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.restart();
                Poll::Ready(Some(Ok(Frame::data(this.event.clone()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::StreamExt as _;
    use http_body_util::{BodyExt as _, StreamBody};

    use super::*;

    /// A body that yields `first`, waits `gap`, yields `second`, then ends.
    fn gappy(
        first: &'static str,
        gap: Duration,
        second: &'static str,
    ) -> impl Body<Data = Bytes, Error = BoxError> + Unpin {
        let frames = futures_util::stream::iter([first])
            .chain(futures_util::stream::once(async move {
                tokio::time::sleep(gap).await;
                second
            }))
            .map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from_static(s.as_bytes()))))
            .boxed();
        StreamBody::new(frames).map_err(|never| -> BoxError { match never {} })
    }

    async fn all<B>(body: B) -> String
    where
        B: Body<Data = Bytes, Error = BoxError> + Unpin,
    {
        let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn silences_get_the_clients_keep_alive_at_every_interval() {
        let body = KeepAlive::new(
            gappy(
                "event: a\ndata: {}\n\n",
                Duration::from_secs(25),
                "event: b\ndata: {}\n\n",
            ),
            Dialect::Anthropic,
            Duration::from_secs(10),
        );
        let ping = "event: ping\ndata: {\"type\": \"ping\"}\n\n";
        assert_eq!(
            all(body).await,
            format!("event: a\ndata: {{}}\n\n{ping}{ping}event: b\ndata: {{}}\n\n")
        );
        let body = KeepAlive::new(
            gappy("data: 1\n\n", Duration::from_secs(11), "data: 2\n\n"),
            Dialect::OpenAI,
            Duration::from_secs(10),
        );
        assert_eq!(all(body).await, "data: 1\n\n: keep-alive\n\ndata: 2\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_restart_the_interval_and_zero_turns_keep_alives_off() {
        let body = KeepAlive::new(
            gappy("data: 1\n\n", Duration::from_secs(9), "data: 2\n\n"),
            Dialect::OpenAI,
            Duration::from_secs(10),
        );
        assert_eq!(all(body).await, "data: 1\n\ndata: 2\n\n");
        let body = KeepAlive::new(
            gappy("data: 1\n\n", Duration::from_secs(60), "data: 2\n\n"),
            Dialect::OpenAI,
            Duration::ZERO,
        );
        assert_eq!(all(body).await, "data: 1\n\ndata: 2\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_already_waited_hears_at_once() {
        let body = KeepAlive::new(
            gappy("", Duration::from_secs(5), "data: 1\n\n"),
            Dialect::OpenAI,
            Duration::from_secs(10),
        )
        .first_at(Instant::now());
        assert_eq!(all(body).await, ": keep-alive\n\ndata: 1\n\n");
    }
}
